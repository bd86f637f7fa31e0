"""Wiring: the feed with its provider, sinks and connections, from the settings."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis

from bourse import redis_client
from bourse.lease import LeaseLostError
from bourse.settings import Settings
from models.availability import is_unavailable
from models.db import create_engine, create_sessionmaker
from workers.marketdata.feed import MarketDataFeed
from workers.marketdata.providers import SinkContext
from workers.marketdata.selection import load_provider, load_sinks

log = structlog.get_logger("bourse.marketdata")


async def run_feed(
    settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
) -> None:
    """Run the configured feed until ``stop``. A lease lost while Redis was unreachable (or an
    outage at start) starts the feed afresh, as a restarted process would, after a backoff:
    the lease itself decides whether this process or another one runs it."""
    delay = 0.5
    while not stop.is_set():
        try:
            await _run_once(settings, database_url, redis_url, stop)
            return
        except Exception as exc:
            if not (isinstance(exc, LeaseLostError) or is_unavailable(exc)):
                raise
            log.warning("market-data feed interrupted; starting again", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 10.0)


async def _run_once(
    settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
) -> None:
    engine = create_engine(database_url, pool_size=2, timeout=settings.dependency_timeout_seconds)
    redis: Redis = redis_client.connect(
        redis_url,
        client_name=f"{settings.redis_prefix}marketdata",
        # Bounded (above the feed's 1 s BLOCK): a Redis that hangs is an error, not a wait.
        socket_timeout=10.0,
        socket_connect_timeout=settings.dependency_timeout_seconds,
    )
    try:
        sessionmaker = create_sessionmaker(engine)
        sinks = load_sinks(settings, SinkContext(settings, redis, sessionmaker))
        feed = MarketDataFeed(
            settings=settings,
            redis=redis,
            sessionmaker=sessionmaker,
            provider=load_provider(settings),
            sinks=sinks,
        )
        await feed.run(stop)
    finally:
        await redis.aclose()
        await engine.dispose()
