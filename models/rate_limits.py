"""Rate limits on every mutation, per user and per client address (issue 17 item 7).

A fixed one-minute window per key in Redis, counted and checked in one Lua call for both keys,
so a request costs one round trip. Sign-in has its own, stricter throttle (`models.throttle`);
this one is the floor under everything else (withdrawal spam, ticket floods, order storms from
one client). A limit of 0 is off: a load generator is one address, and a deployment behind a
NAT may choose to count users only. Behind a proxy the address is the client's only when the
proxy is trusted (`BOURSE_TRUSTED_PROXIES`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from bourse import redis_client
from bourse.clock import utcnow
from bourse.keys import mutation_rate_key

# KEYS: the counters to take one from; ARGV: their limits, then the window in seconds.
# 1 = allowed (every counter under its limit), 0 = refused (counted anyway: a client that keeps
# hammering stays refused for the window).
_TAKE = """
local allowed = 1
local window = tonumber(ARGV[#ARGV])
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, window) end
  if n > tonumber(ARGV[i]) then allowed = 0 end
end
return allowed
"""


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_user: int  # mutations per window per signed-in user (0: no limit)
    per_ip: int  # mutations per window per client address (0: no limit)
    window_seconds: int = 60


class MutationRateLimiter:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        limits: RateLimits,
        clock: Callable[[], datetime] = utcnow,
        pipelined: redis_client.Pipelined | None = None,
    ) -> None:
        self._prefix = prefix
        self._limits = limits
        self._clock = clock
        self._take: Any = redis.register_script(_TAKE)
        self._cluster = redis_client.is_cluster(redis)
        # Every mutation's count shares a pipeline with the concurrent requests' Redis reads.
        self._pipelined = pipelined or redis_client.Pipelined(redis)

    async def _count(self, keys: list[str], args: list[int]) -> bool:
        """The script over ``keys`` (its EVALSHA pipelined; loaded by a direct call when
        Redis does not have it yet, after a restart or a flush)."""
        try:
            [allowed] = await self._pipelined.execute(
                ("EVALSHA", self._take.sha, len(keys), *keys, *args)
            )
        except NoScriptError:
            allowed = await self._take(keys=keys, args=args)
        return bool(allowed)

    async def allow(self, user_id: str | None, ip: str | None) -> bool:
        """Count one mutation for the caller; False when a limit is passed this window."""
        limits = self._limits
        window = int(self._clock().timestamp()) // limits.window_seconds
        keys: list[str] = []
        args: list[int] = []
        if user_id and limits.per_user > 0:
            keys.append(mutation_rate_key(self._prefix, "user", user_id, window))
            args.append(limits.per_user)
        if ip and limits.per_ip > 0:
            keys.append(mutation_rate_key(self._prefix, "ip", ip, window))
            args.append(limits.per_ip)
        if not keys:
            return True
        if self._cluster and len(keys) > 1:
            # The keys live in different slots: one script call per key (each counts its
            # key, as the loop below does), concurrently; allowed when every one allows.
            taken = await asyncio.gather(
                *(
                    self._count([key], [limit, limits.window_seconds])
                    for key, limit in zip(keys, args, strict=True)
                )
            )
            return all(taken)
        return await self._count(keys, [*args, limits.window_seconds])

    async def allow_credential(self, kind: str, ident: str, per_window: int) -> bool:
        """Count one request made with a partner credential (an API key, a partner app):
        every request, queries too, within the credential's own limit (0: none)."""
        if per_window <= 0:
            return True
        window = int(self._clock().timestamp()) // self._limits.window_seconds
        key = mutation_rate_key(self._prefix, kind, ident, window)
        return await self._count([key], [per_window, self._limits.window_seconds])
