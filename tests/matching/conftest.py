"""Fixtures for the matching tests.

The first lines make sure ``import matching`` finds the project's package: pytest's default
"prepend" import mode puts ``tests/`` on ``sys.path``, where ``tests/matching`` would otherwise
be picked up as a namespace package called ``matching``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_shadow = sys.modules.get("matching")
if _shadow is not None and getattr(_shadow, "__file__", None) is None:
    del sys.modules["matching"]

import asyncio  # noqa: E402

import pytest  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import BusyLoadingError, ConnectionError  # noqa: E402


async def wait_ready(r: Redis, timeout: float = 30.0) -> None:
    """A freshly started (embedded) Redis answers BUSY while it loads its dataset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await r.ping()
            return
        except (BusyLoadingError, ConnectionError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def rds(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    """A client (decode_responses=True); every key under ``redis_prefix`` is deleted after."""
    r = Redis.from_url(redis_url, decode_responses=True)
    await wait_ready(r)
    try:
        yield r
    finally:
        await r.aclose()
        raw = Redis.from_url(redis_url)  # bytes: clean up even keys that are not UTF-8
        try:
            batch = [k async for k in raw.scan_iter(match=f"{redis_prefix}*", count=1000)]
            for i in range(0, len(batch), 500):
                await raw.delete(*batch[i : i + 500])
        finally:
            await raw.aclose()
