"""Liveness and readiness probes.

``/readyz`` probes PostgreSQL, Redis and the matching shards' heartbeats at once, each bounded
by ``PROBE_TIMEOUT_S``, and names the dependencies that are down (``down``): 503 until every
one is back. Nothing needs a restart: every process reconnects by itself (docs/OPERATIONS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from matching.client import shards_alive
from models.services import Services

PROBE_TIMEOUT_S = 2.0
Check = Callable[[Services], Awaitable[bool]]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _postgres(services: Services) -> bool:
    async with services.engine.connect() as conn:
        return bool((await conn.scalar(text("SELECT 1"))) == 1)


async def _redis(services: Services) -> bool:
    return bool(await services.redis.ping())


async def _shards(services: Services) -> bool:
    count = services.settings.matching_shards
    alive = await shards_alive(services.redis, services.settings.redis_prefix, count)
    return count > 0 and all(alive.values())


async def _probe(name: str, check: Check, services: Services) -> bool:
    try:
        return await asyncio.wait_for(check(services), PROBE_TIMEOUT_S)
    except Exception:  # a probe reports, it never raises
        return False


async def readyz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks: dict[str, Check] = {"postgres": _postgres, "redis": _redis, "matching": _shards}
    outcomes = await asyncio.gather(*(_probe(n, c, services) for n, c in checks.items()))
    results = dict(zip(checks, outcomes, strict=True))
    down = [name for name, ok in results.items() if not ok]
    return JSONResponse(
        {"status": "unavailable" if down else "ready", "checks": results, "down": down},
        status_code=503 if down else 200,
    )
