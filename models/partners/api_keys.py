"""API keys: a customer's own credential for scripts and partner tools (issue 18 item 2).

A key is shown once: `bsk_<12 hex>_<43 random>`; its first part is the `prefix` (unique, kept
in the clear so the owner can tell keys apart), the whole secret is kept only as a SHA-256
digest (256 random bits: a fast digest suffices, as for session tokens). Every request with a
key reads its row, so a revocation holds from the next request on. `last_used_at` is written at
most once a minute per key (a hot key must not turn every read into a row write).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import security
from models.accounts import Principal
from models.errors import DomainError, ErrorCode
from models.partners.scopes import parse_scopes
from models.partners.tables import ApiKey
from models.users import User
from models.validation import bounded_text

KEY_PREFIX = "bsk_"
NAME_MAX = 64
LAST_USED_RESOLUTION = timedelta(seconds=60)


def new_key() -> tuple[str, str]:
    """(prefix, secret): the secret begins with the prefix."""
    prefix = f"{KEY_PREFIX}{secrets.token_hex(6)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class KeyCaller:
    principal: Principal
    key_id: uuid.UUID
    requests_per_minute: int


class ApiKeys:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        per_user: int,
        requests_per_minute: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._per_user = per_user
        self._per_minute = requests_per_minute
        self._clock = clock

    async def create(
        self, user_id: uuid.UUID, name: str, scopes: Iterable[str]
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned this once, never again)."""
        label = bounded_text(name, NAME_MAX, "name")
        if not label:
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, f"Name the key (1 to {NAME_MAX} characters).", "name"
            )
        granted = parse_scopes(scopes)
        prefix, secret = new_key()
        async with self._sm.begin() as s:
            # The user's row lock serialises two creations racing past the count.
            await s.execute(select(User.id).where(User.id == user_id).with_for_update())
            live = await s.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            )
            if (live or 0) >= self._per_user:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_API_KEYS,
                    f"At most {self._per_user} keys: revoke one you no longer use.",
                )
            key = ApiKey(
                user_id=user_id,
                name=label,
                prefix=prefix,
                secret_hash=security.token_digest(secret),
                scopes=sorted(granted),
                requests_per_minute=self._per_minute,
                created_at=self._clock(),
            )
            s.add(key)
        return key, secret

    async def list(self, user_id: uuid.UUID) -> list[ApiKey]:
        async with self._sm() as s:
            rows = await s.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id)
            )
            return list(rows)

    async def revoke(self, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
        async with self._sm.begin() as s:
            key = await s.scalar(
                select(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.user_id == user_id)
                .with_for_update()
            )
            if key is None:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such key.", "id")
            if key.revoked_at is None:
                key.revoked_at = self._clock()
            return key

    async def revoke_all(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Inside another transaction (account closure)."""
        await session.execute(
            update(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )

    async def authenticate(self, secret: str) -> KeyCaller | None:
        digest = security.token_digest(secret)
        now = self._clock()
        async with self._sm() as s:
            found = (
                await s.execute(
                    select(
                        ApiKey.id,
                        ApiKey.scopes,
                        ApiKey.requests_per_minute,
                        ApiKey.last_used_at,
                        User.id,
                        User.role,
                    )
                    .join(User, User.id == ApiKey.user_id)
                    .where(
                        ApiKey.secret_hash == digest,
                        ApiKey.revoked_at.is_(None),
                        User.closed_at.is_(None),
                    )
                )
            ).first()
            if found is None:
                return None
            key_id, scopes, per_minute, last_used, user_id, role = found
            if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
                await s.execute(
                    update(ApiKey)
                    .where(ApiKey.id == key_id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
                await s.commit()
        principal = Principal(
            user_id=user_id, role=role, session_id=key_id, scopes=frozenset(scopes)
        )
        return KeyCaller(principal, key_id, per_minute)
