"""Login throttling in Redis: per account and per client IP.

Failures are counted in a fixed window; at the limit the account (or IP) is locked for a
cool-down. Keys expire by themselves, so a lock lifts without any job running.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bourse.keys import login_fail_key, login_lock_key


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    max_failures: int
    window_seconds: int
    lockout_seconds: int
    ip_max_failures: int


class LoginThrottle:
    def __init__(self, redis: Redis, prefix: str, config: ThrottleConfig) -> None:
        self._redis = redis
        self._prefix = prefix
        self._config = config

    def _keys(self, kind: str, ident: str) -> tuple[str, str]:
        return (
            login_fail_key(self._prefix, kind, ident),
            login_lock_key(self._prefix, kind, ident),
        )

    async def account_locked(self, account: str) -> bool:
        return bool(await self._redis.exists(self._keys("acct", account)[1]))

    async def ip_locked(self, ip: str) -> bool:
        return bool(await self._redis.exists(self._keys("ip", ip)[1]))

    async def record_failure(self, account: str, ip: str | None) -> None:
        await self._bump("acct", account, self._config.max_failures)
        if ip:
            await self._bump("ip", ip, self._config.ip_max_failures)

    async def _bump(self, kind: str, ident: str, limit: int) -> None:
        fail_key, lock_key = self._keys(kind, ident)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(fail_key)
            pipe.expire(fail_key, self._config.window_seconds, nx=True)
            count, _ = await pipe.execute()
        if int(count) >= limit:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(lock_key, "1", ex=self._config.lockout_seconds)
                pipe.delete(fail_key)
                await pipe.execute()

    async def clear_account(self, account: str) -> None:
        await self._redis.delete(*self._keys("acct", account))
