"""Web Push subscriptions and the VAPID application server key.

The browser's ``PushManager.subscribe({applicationServerKey: vapidPublicKey})`` gives an
endpoint and two keys (``p256dh``: the client's P-256 public key, ``auth``: a 16-byte secret);
``registerPushSubscription`` stores them (unique per endpoint: registering it again, even for
another user after a sign-in on the same browser, moves it). A push service answering 404 or
410 means the subscription is gone: it is disabled and never used again.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models.errors import DomainError, ErrorCode, ProblemCollector
from models.notifications.tables import PushSubscription

MAX_PER_USER = 20


def b64url_decode(raw: str) -> bytes:
    text = raw.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@lru_cache(maxsize=4)
def public_key_of(private_pem: str) -> str:
    """The application server key for ``PushManager.subscribe``: the uncompressed P-256
    public point, URL-safe base64 without padding."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def _key(raw: str, size: int, field: str, checks: ProblemCollector) -> None:
    try:
        ok = len(b64url_decode(raw)) == size
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        checks.add(ErrorCode.INVALID_INPUT, f"Not a {size}-byte URL-safe base64 key.", field)


class PushSubscriptions:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, allow_http: bool = False
    ) -> None:
        self._sm = sessionmaker
        self._allow_http = allow_http  # outside production: a local push endpoint (tests)

    async def register(self, user_id: uuid.UUID, endpoint: str, p256dh: str, auth: str) -> None:
        checks = ProblemCollector()
        url = urlsplit(endpoint.strip())
        schemes = {"https", "http"} if self._allow_http else {"https"}
        if url.scheme not in schemes or not url.hostname or len(endpoint) > 2000:
            checks.add(ErrorCode.INVALID_INPUT, "Not a push service URL.", "endpoint")
        _key(p256dh, 65, "p256dh", checks)
        _key(auth, 16, "auth", checks)
        checks.raise_if_any()
        now = utcnow()
        async with self._sm.begin() as s:
            count = len(
                (
                    await s.scalars(
                        select(PushSubscription.id).where(
                            PushSubscription.user_id == user_id,
                            PushSubscription.disabled_at.is_(None),
                        )
                    )
                ).all()
            )
            if count >= MAX_PER_USER:
                raise DomainError.one(
                    ErrorCode.INVALID_INPUT, f"At most {MAX_PER_USER} devices.", "endpoint"
                )
            await s.execute(
                insert(PushSubscription)
                .values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    endpoint=endpoint.strip(),
                    p256dh=p256dh.strip(),
                    auth=auth.strip(),
                    created_at=now,
                )
                .on_conflict_do_update(
                    constraint="uq_push_subscriptions_endpoint",
                    set_={
                        "user_id": user_id,
                        "p256dh": p256dh.strip(),
                        "auth": auth.strip(),
                        "disabled_at": None,
                    },
                )
            )

    async def live(self, user_id: uuid.UUID) -> list[PushSubscription]:
        async with self._sm() as s:
            found = await s.scalars(
                select(PushSubscription).where(
                    PushSubscription.user_id == user_id, PushSubscription.disabled_at.is_(None)
                )
            )
            return list(found.all())

    async def disable(self, subscription_id: uuid.UUID) -> None:
        async with self._sm.begin() as s:
            await s.execute(
                update(PushSubscription)
                .where(PushSubscription.id == subscription_id)
                .values(disabled_at=utcnow())
            )
