"""Wiring: the feed with its provider, sinks and connections, from the settings."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bourse.settings import Settings
from models.db import create_engine, create_sessionmaker
from workers.marketdata.feed import MarketDataFeed
from workers.marketdata.providers import SinkContext
from workers.marketdata.selection import load_provider, load_sinks


async def run_feed(
    settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
) -> None:
    """Run the configured feed until ``stop`` (raises if it lost its lease)."""
    engine = create_engine(database_url, pool_size=2)
    redis: Redis = Redis.from_url(redis_url, client_name=f"{settings.redis_prefix}marketdata")
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
