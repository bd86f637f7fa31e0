"""The one clock: timezone-aware UTC now, and nanoseconds for the matching commands' ``ts``.

Code that must be testable at a pinned moment takes a ``clock: Callable[[], datetime]``
defaulting to ``utcnow`` (the order book, the outbox relay) instead of calling it inline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_ns() -> int:
    return time.time_ns()
