"""The access token → principal cache of one API process, with immediate revocation.

Every authenticated request resolves its bearer token to a session (``Accounts.authenticate``):
a PostgreSQL round trip (pool checkout, SELECT, ROLLBACK) per request, the largest single cost
of a placeOrder after the order's own transaction. The answer changes only when the session is
revoked (logout, password change or reset, refresh rotation, a stolen-refresh family end) or
expires, so each API process keeps it in memory:

- An entry lives at most ``ttl`` seconds and never past the token's own expiry.
- Every revocation is published on ``keys.session_revocations`` after its commit (``s:<session
  id>`` or ``u:<user id>``: all of a user's sessions) and evicted locally before the call
  returns, so the process that revoked never serves the token again, and every other API
  process evicts it as soon as Redis delivers the message (the API's pub/sub hub subscribes).
- Fail closed: the cache answers only while ``live()`` says the revocations subscription is
  connected. While Redis is unreachable (messages could be missed) every lookup goes to
  PostgreSQL, and on reconnect the cache starts empty. A process without a subscription
  (workers, scripts) never caches.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bourse.clock import utcnow
from models.users import Role

SESSION_PREFIX = "s:"
USER_PREFIX = "u:"


@dataclass(frozen=True, slots=True)
class CachedSession:
    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    expires_at: datetime  # the earlier of the token's expiry and the cache's TTL


def never() -> bool:
    return False


class SessionCache:
    def __init__(
        self,
        ttl: timedelta,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._by_digest: dict[bytes, CachedSession] = {}
        self._by_session: dict[uuid.UUID, bytes] = {}
        self._by_user: dict[uuid.UUID, set[bytes]] = {}
        # Whether revocations are being received; until something says so, nothing is cached.
        self.live: Callable[[], bool] = never
        self.hits = 0
        self.misses = 0

    def get(self, digest: bytes) -> CachedSession | None:
        if not self.live():
            return None
        entry = self._by_digest.get(digest)
        if entry is not None and entry.expires_at <= self._clock():
            self._drop(digest)
            entry = None
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def put(
        self,
        digest: bytes,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        role: Role,
        token_expires_at: datetime,
    ) -> None:
        if not self.live() or self.ttl <= timedelta(0):
            return
        if len(self._by_digest) >= self.max_entries:
            self._drop(next(iter(self._by_digest)))  # the oldest entry
        expires = min(token_expires_at, self._clock() + self.ttl)
        self._by_digest[digest] = CachedSession(user_id, session_id, role, expires)
        self._by_session[session_id] = digest
        self._by_user.setdefault(user_id, set()).add(digest)

    def revoke(self, message: str) -> None:
        """Apply one revocation message (``s:<session id>`` or ``u:<user id>``)."""
        try:
            ident = uuid.UUID(message[2:])
        except ValueError:
            self.clear()  # unreadable: drop everything rather than guess
            return
        if message.startswith(SESSION_PREFIX):
            digest = self._by_session.get(ident)
            if digest is not None:
                self._drop(digest)
        elif message.startswith(USER_PREFIX):
            for digest in list(self._by_user.get(ident, ())):
                self._drop(digest)
        else:
            self.clear()

    def clear(self) -> None:
        self._by_digest.clear()
        self._by_session.clear()
        self._by_user.clear()

    def __len__(self) -> int:
        return len(self._by_digest)

    def _drop(self, digest: bytes) -> None:
        entry = self._by_digest.pop(digest, None)
        if entry is None:
            return
        self._by_session.pop(entry.session_id, None)
        digests = self._by_user.get(entry.user_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_user[entry.user_id]


def session_message(session_id: uuid.UUID) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def user_message(user_id: uuid.UUID) -> str:
    return f"{USER_PREFIX}{user_id}"
