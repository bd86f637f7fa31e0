"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from matching.client import shards_alive
from models.services import Services

PROBE_TIMEOUT_S = 2.0


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


async def readyz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks = {"postgres": _postgres, "redis": _redis, "matching": _shards}
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            results[name] = await asyncio.wait_for(check(services), PROBE_TIMEOUT_S)
        except Exception:  # a probe reports, it never raises
            results[name] = False
    ok = all(results.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": results},
        status_code=200 if ok else 503,
    )
