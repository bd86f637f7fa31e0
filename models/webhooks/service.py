"""Webhook endpoints and their delivery log: create (the secret shown once), list, enable or
disable, delete, page through deliveries, replay one.

Who owns what (`Owner`): a signed-in session sees and manages every endpoint on its customer's
account, whoever made it; an API key only the endpoints it made; a partner app only those it
made for this customer. Another owner's id is NOT_FOUND, never FORBIDDEN (no existence leak).

URLs: https only in production, and no loopback, private, link-local or otherwise non-global
address (nor `localhost`), so an endpoint cannot aim the sender at the platform's own network
(SSRF); the sender checks the resolved addresses again before each POST
(`public_destination`). Outside production http and loopback are allowed (tests, local
development).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import pagination
from models.accounts import Principal
from models.envelope import FieldCipher
from models.errors import DomainError, ErrorCode
from models.users import User
from models.webhooks.events import ALL, EVENT_TYPES, scopes_needed
from models.webhooks.tables import SECRET_COLUMN, DeliveryStatus, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
URL_MAX = 2000
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


@dataclass(frozen=True, slots=True)
class Owner:
    """The credential an endpoint belongs to (see the module's docstring)."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None  # None: the customer's own session

    @classmethod
    def of(cls, principal: Principal) -> Owner:
        if principal.scopes is None:
            return cls(principal.user_id)
        if principal.app_id is not None:
            return cls(principal.user_id, app_id=principal.app_id, scopes=principal.scopes)
        return cls(principal.user_id, api_key_id=principal.session_id, scopes=principal.scopes)

    def sees(self) -> ColumnElement[bool]:
        """The endpoints this owner may see and manage."""
        clause = WebhookEndpoint.user_id == self.user_id
        if self.api_key_id is not None:
            return and_(clause, WebhookEndpoint.api_key_id == self.api_key_id)
        if self.app_id is not None:
            return and_(clause, WebhookEndpoint.app_id == self.app_id)
        return clause

    def owns(self) -> ColumnElement[bool]:
        """The endpoints counted against this owner's limit (exactly its own)."""
        return and_(
            WebhookEndpoint.user_id == self.user_id,
            WebhookEndpoint.api_key_id.is_(None)
            if self.api_key_id is None
            else WebhookEndpoint.api_key_id == self.api_key_id,
            WebhookEndpoint.app_id.is_(None)
            if self.app_id is None
            else WebhookEndpoint.app_id == self.app_id,
        )


def _bad_url(message: str) -> DomainError:
    return DomainError.one(ErrorCode.INVALID_URL, message, "url")


def _is_public_ip(host: str) -> bool | None:
    """True/False for an IP literal; None for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(raw: str, *, production: bool) -> str:
    """The endpoint URL as stored, or INVALID_URL."""
    url = raw.strip()
    if not url or len(url) > URL_MAX:
        raise _bad_url(f"Give the receiver's URL (at most {URL_MAX} characters).")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise _bad_url("Not a URL.") from None
    schemes = {"https"} if production else {"https", "http"}
    if parts.scheme not in schemes:
        raise _bad_url("Use an https:// URL." if production else "Use an http(s):// URL.")
    if not host:
        raise _bad_url("The URL has no host.")
    if parts.username or parts.password:
        raise _bad_url("No credentials in the URL: check the Bourse-Signature header instead.")
    if parts.fragment:
        raise _bad_url("No #fragment in the URL.")
    if production:
        public = _is_public_ip(host)
        name = host.lower().rstrip(".")
        if (
            public is False
            or name == "localhost"
            or name.endswith(_PRIVATE_SUFFIXES)
            or (public is None and "." not in name)
        ):
            raise _bad_url("The URL must point to a public internet address.")
    return url


async def public_destination(url: str) -> bool:
    """Whether every address the URL's host resolves to is public (checked before each POST in
    production: a name may be re-pointed at a private address after the endpoint was made)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = _is_public_ip(host)
    if literal is not None:
        return literal
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(_is_public_ip(str(info[4][0])) for info in infos)


def new_secret() -> str:
    return f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def _not_found(field: str = "id") -> DomainError:
    return DomainError.one(ErrorCode.NOT_FOUND, "No such webhook.", field)


class Webhooks:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        fields: FieldCipher,
        *,
        per_owner: int,
        production: bool,
    ) -> None:
        self._sm = sessionmaker
        self._fields = fields
        self._per_owner = per_owner
        self._production = production

    def _events(self, owner: Owner, wanted: Iterable[str]) -> list[str]:
        chosen = sorted({e.strip() for e in wanted})
        if not chosen:
            raise DomainError.one(
                ErrorCode.INVALID_EVENT_TYPE, "Name at least one event type (or *).", "events"
            )
        for name in chosen:
            if name != ALL and name not in EVENT_TYPES:
                raise DomainError.one(
                    ErrorCode.INVALID_EVENT_TYPE, f"Unknown event type {name[:40]!r}.", "events"
                )
            if (
                name != ALL
                and owner.scopes is not None
                and not (scopes_needed(name) & owner.scopes)
            ):
                needed = " or ".join(sorted(scopes_needed(name)))
                raise DomainError.one(
                    ErrorCode.INVALID_SCOPE, f"{name} needs the {needed} scope.", "events"
                )
        return chosen

    async def create(
        self, owner: Owner, url: str, events: Sequence[str]
    ) -> tuple[WebhookEndpoint, str]:
        """A new enabled endpoint and its signing secret (returned this once)."""
        checked = check_url(url, production=self._production)
        chosen = self._events(owner, events)
        secret = new_secret()
        endpoint_id = uuid.uuid4()
        sealed = await self._fields.seal(secret, column=SECRET_COLUMN, row=endpoint_id)
        now = utcnow()
        async with self._sm.begin() as s:
            # The customer's row lock serialises two creations racing past the count.
            await s.execute(select(User.id).where(User.id == owner.user_id).with_for_update())
            count = await s.scalar(
                select(func.count()).select_from(WebhookEndpoint).where(owner.owns())
            )
            if (count or 0) >= self._per_owner:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_WEBHOOKS,
                    f"At most {self._per_owner} webhooks: delete one you no longer use.",
                )
            endpoint = WebhookEndpoint(
                id=endpoint_id,
                user_id=owner.user_id,
                api_key_id=owner.api_key_id,
                app_id=owner.app_id,
                url=checked,
                events=chosen,
                secret_sealed=sealed,
                enabled=True,
                created_at=now,
                updated_at=now,
            )
            s.add(endpoint)
        return endpoint, secret

    async def list(self, owner: Owner) -> list[WebhookEndpoint]:
        async with self._sm() as s:
            rows = await s.scalars(
                select(WebhookEndpoint)
                .where(owner.sees())
                .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
            )
            return list(rows)

    async def _mine(self, s: AsyncSession, owner: Owner, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        found = await s.scalar(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, owner.sees())
            .with_for_update()
        )
        if found is None:
            raise _not_found()
        return found

    async def update(
        self,
        owner: Owner,
        endpoint_id: uuid.UUID,
        *,
        enabled: bool | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
    ) -> WebhookEndpoint:
        checked = None if url is None else check_url(url, production=self._production)
        chosen = None if events is None else self._events(owner, events)
        async with self._sm.begin() as s:
            endpoint = await self._mine(s, owner, endpoint_id)
            if enabled is not None:
                endpoint.enabled = enabled
                if enabled:
                    endpoint.failing_since = None
            if checked is not None:
                endpoint.url = checked
            if chosen is not None:
                endpoint.events = chosen
            endpoint.updated_at = utcnow()
            return endpoint

    async def delete(self, owner: Owner, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its delivery log (pending deliveries are not sent)."""
        async with self._sm.begin() as s:
            endpoint = await self._mine(s, owner, endpoint_id)
            await s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))

    async def deliveries(
        self, owner: Owner, endpoint_id: uuid.UUID, first: int | None, after: str | None
    ) -> pagination.Page[WebhookDelivery]:
        """The endpoint's delivery log, newest first."""
        limit = pagination.page_size(first)
        async with self._sm() as s:
            visible = await s.scalar(
                select(WebhookEndpoint.id).where(WebhookEndpoint.id == endpoint_id, owner.sees())
            )
            if visible is None:
                raise _not_found("webhookId")
            query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            if after is not None:
                at, key = pagination.decode_cursor(after, uuid.UUID)
                query = query.where(
                    tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(at, key)
                )
            rows = list(
                await s.scalars(
                    query.order_by(
                        WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()
                    ).limit(limit + 1)
                )
            )
        return pagination.Page(rows[:limit], len(rows) > limit)

    async def replay(self, owner: Owner, delivery_id: uuid.UUID) -> WebhookDelivery:
        """Send the delivery again, now: the same event, id and body (the row is reused, so there
        is still one delivery per endpoint and event; its attempts keep counting)."""
        async with self._sm.begin() as s:
            delivery = await s.scalar(
                select(WebhookDelivery)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id == delivery_id, owner.sees())
                .with_for_update(of=WebhookDelivery)
            )
            if delivery is None:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such delivery.", "id")
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = utcnow()
            return delivery
