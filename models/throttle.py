"""Login throttling in Redis: per account and per client IP, reserved before the password check.

An attempt is counted (reserved) atomically before the password is verified, by one Lua script
per key: refuse while locked; INCR (the window's expiry set by the first attempt); past the limit,
lock for the cool-down and refuse. So however many guesses race, at most `max_failures` per
window are ever checked against the password (issue 17: 60 concurrent wrong guesses used to be
counted only after their slow argon2 checks, and all of them were checked).

A failed attempt keeps its reservation; a success (or a right password that still needs its
second factor) gives it back, and a full sign-in clears the account's counter. Keys expire by
themselves, so a lock lifts without any job running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bourse.keys import login_fail_key, login_lock_key

# KEYS: failures, lock. ARGV: limit, window seconds, lockout seconds. 1 = reserved, 0 = refused.
_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 0
end
return 1
"""
# KEYS: failures. Gives one reservation back, never creating the key (nor one without expiry).
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


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
        self._reserve: Any = redis.register_script(_RESERVE)
        self._release: Any = redis.register_script(_RELEASE)

    def _keys(self, kind: str, ident: str) -> tuple[str, str]:
        return (
            login_fail_key(self._prefix, kind, ident),
            login_lock_key(self._prefix, kind, ident),
        )

    async def reserve_ip(self, ip: str) -> bool:
        """Count one attempt from this address; False when it is over its limit (locked)."""
        return await self._take("ip", ip, self._config.ip_max_failures)

    async def reserve_account(self, account: str) -> bool:
        """Count one attempt on this account; False when it is over its limit (locked)."""
        return await self._take("acct", account, self._config.max_failures)

    async def _take(self, kind: str, ident: str, limit: int) -> bool:
        keys = self._keys(kind, ident)
        args = [limit, self._config.window_seconds, self._config.lockout_seconds]
        return bool(await self._reserve(keys=list(keys), args=args))

    async def release(self, account: str | None, ip: str | None) -> None:
        """Give reservations back (the attempt was not a failure)."""
        if account is not None:
            await self._release(keys=[self._keys("acct", account)[0]])
        if ip:
            await self._release(keys=[self._keys("ip", ip)[0]])

    async def clear_account(self, account: str) -> None:
        await self._redis.delete(*self._keys("acct", account))  # one slot: see bourse.keys
