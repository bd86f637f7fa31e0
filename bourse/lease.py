"""One Redis lease: at most one process at a time does a job (runs shard K, runs the feed).

A lease is a key holding the holder's token with a TTL (``SET key token NX PX ttl``). The
holder refreshes it well inside the TTL (``PEXPIRE``, only if the key still holds its token:
one Lua script, so nobody else's lease is ever extended or deleted) and releases it on the way
out. A holder that stalls past the TTL has lost the job to whoever takes the key next; it learns
so at its next refresh (``LeaseLostError``) and must stop writing at once. Fencing of each write
(the shard WATCHes the key in its transactions) is the caller's business: the key and the token
are public for that.

Imports nothing of ours: used by ``matching.shard`` and ``workers.marketdata.feed``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from redis.asyncio import Redis

_REFRESH: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


class LeaseLostError(RuntimeError):
    """Another process holds the lease now: stop at once, write nothing more."""


def new_token() -> str:
    """``host:pid:random``: unique per holder, and says who holds a lease when read."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Lease:
    """A lease on ``key`` for ``ttl_ms`` milliseconds at a time, under ``token``."""

    def __init__(self, redis: Redis, key: str, ttl_ms: int, *, token: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = token or new_token()
        self.held = False

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it (one SET NX PX)."""
        if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            self.held = True
        return self.held

    async def acquire(
        self,
        stopped: Callable[[], bool],
        *,
        poll: float = 0.05,
        wait: Callable[[float], Awaitable[object]] | None = None,
        on_wait: Callable[[object], object] | None = None,
        on_error: Callable[[Exception], object] | None = None,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> bool:
        """Take the lease, waiting (every ``poll`` seconds) for its holder's to end; False if
        ``stopped()`` first. ``on_wait(holder)`` is called once, when the wait begins;
        ``wait(seconds)`` replaces the sleep (e.g. a wait on a stop event); errors of the
        types in ``retry_on`` are passed to ``on_error`` and retried, others propagate."""
        waited = False
        while not stopped():
            try:
                if await self.try_acquire():
                    return True
                if not waited and on_wait is not None:
                    on_wait(await self.redis.get(self.key))
                waited = True
            except retry_on as exc:
                if on_error is not None:
                    on_error(exc)
            await (wait or asyncio.sleep)(poll)
        return False

    async def refresh(self) -> None:
        """Extend the lease by its TTL; ``LeaseLostError`` if another process holds it."""
        if not await self._eval(_REFRESH, str(self.ttl_ms)):
            self.held = False
            raise LeaseLostError(f"lease {self.key} lost")

    async def reclaim(self) -> bool:
        """After an outage: still ours, or expired meanwhile and nobody else took it (taken
        again)? False if another process holds it."""
        current = await self.redis.get(self.key)
        if isinstance(current, bytes):
            current = current.decode()
        if current == self.token or await self.try_acquire():
            self.held = True
            return True
        self.held = False
        return False

    async def release(self) -> bool:
        """Delete the lease if it is still ours (never anybody else's)."""
        released = bool(await self._eval(_RELEASE))
        self.held = False
        return released

    def lost(self, message: str | None = None) -> LeaseLostError:
        """Mark the lease lost (a fenced write found out) and return the error to raise."""
        self.held = False
        return LeaseLostError(message or f"lease {self.key} lost")

    async def _eval(self, script: str, *args: str) -> Any:
        return await cast(Awaitable[Any], self.redis.eval(script, 1, self.key, self.token, *args))
