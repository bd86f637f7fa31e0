"""A subscription lives only as long as the session that opened it.

An access token is checked once when a websocket operation starts; without more, a stream
opened with it kept delivering the user's fills after logout, a password change or the token's
expiry (issue 17). `SessionWatch` re-checks the session (the same `authenticate` every HTTP
request runs) before each event is delivered and at least every
`BOURSE_SUBSCRIPTION_SESSION_CHECK_SECONDS` while the stream is idle; once the session is
revoked or expired the subscription ends with `UNAUTHENTICATED` (the client signs in again and
resubscribes).
"""

from __future__ import annotations

import time

from resolvers.context import Context
from resolvers.errors import ApiError


class SessionEnded(ApiError):
    def __init__(self) -> None:
        super().__init__(
            "The session that opened this subscription has ended: sign in again.",
            "UNAUTHENTICATED",
        )


class SessionWatch:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.interval = context.services.settings.subscription_session_check_seconds
        self._checked_at = time.monotonic()

    async def check(self) -> None:
        """Raise `SessionEnded` unless the token still names a live session."""
        token = self._context.token()
        # A session, a key or a partner token: still live, not revoked (models.partners).
        alive = token is not None and (
            (await self._context.services.partners.caller(token)).principal is not None
        )
        self._checked_at = time.monotonic()
        if not alive:
            raise SessionEnded

    def wait_budget(self) -> float:
        """How long the stream may wait for its next event before the session is re-checked."""
        return max(0.0, self._checked_at + self.interval - time.monotonic())
