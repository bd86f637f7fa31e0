"""Helpers of the feed and quotes tests: real shards in-process, a real feed, scripted ticks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.settings import Settings
from matching.client import submit
from matching.codec import asset_scales
from matching.shard import Shard, ShardConfig
from matching.wire import new_order
from models.assets import Asset, AssetClass, Assets, NewAsset
from models.db import create_engine, create_sessionmaker
from models.exchange import Exchange
from workers.marketdata.feed import MarketDataFeed
from workers.marketdata.providers import Instrument, Tick, TickSink, Trade


def unique_symbol(stem: str = "Q") -> str:
    return f"{stem}{uuid.uuid4().hex[:7]}".upper()


def feed_settings(settings: Settings, prefix: str, **overrides: Any) -> Settings:
    """The run's settings on a private Redis prefix, one matching shard, fast timings."""
    values: dict[str, Any] = {
        "redis_prefix": prefix,
        "matching_shards": 1,
        "marketdata_publish_interval_ms": 10,
        "marketdata_reference_interval_ms": 50,
        "marketdata_persist_interval_seconds": 0.2,
        "marketdata_assets_refresh_seconds": 0.5,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def create_asset(
    settings: Settings,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    symbol: str | None = None,
    price: str = "100.00",
    asset_class: AssetClass = AssetClass.CRYPTO,
) -> Asset:
    """A listed asset, configured on the matching shards of ``settings`` (ADD_ASSET)."""
    exchange = Exchange(redis, settings.redis_prefix, settings.matching_shards)
    return await Assets(sessionmaker, exchange.configure).create(
        NewAsset(
            symbol=symbol or unique_symbol(),
            name="Test asset",
            asset_class=asset_class,
            currency="USD",
            tick_size="0.01",
            fractionable=True,
            tradable=True,
            reference_price=price,
        )
    )


@asynccontextmanager
async def running_shards(redis_url: str, prefix: str, shards: int = 1) -> AsyncIterator[None]:
    """Real matching shards in this process (the shard runner, against the real Redis)."""
    runners = [
        Shard(ShardConfig(shard=k, shards=shards, redis_url=redis_url, prefix=prefix, block_ms=50))
        for k in range(shards)
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for r in runners:
            r.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)


async def place_limit(
    redis: Redis, settings: Settings, asset: Asset, side: str, price: str, quantity: str
) -> str:
    """A LIMIT GTC order straight onto the shard (as the orders service will send it)."""
    scales = asset_scales(asset.tick_size, asset.quantity_increment)
    order_id = str(uuid.uuid4())
    cmd = new_order(
        order_id=order_id,
        user_id=str(uuid.uuid4()),
        asset_id=asset.symbol,
        side=side,
        order_type="LIMIT",
        tif="GTC",
        quantity=scales.quantity(quantity),
        price=scales.price(price),
        ts=time.time_ns(),
    )
    await submit(redis, settings.redis_prefix, settings.matching_shards, dict(cmd))
    return order_id


class ScriptedProvider:
    """A provider whose ticks the test pushes (``put``); it records what it was asked for."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Tick] = asyncio.Queue()
        self.calls: list[list[str]] = []

    def put(self, symbol: str, price: str, at: datetime | None = None) -> None:
        self.queue.put_nowait(Tick(symbol, at or datetime.now(UTC), Decimal(price)))

    async def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        self.calls.append([i.symbol for i in instruments])
        while True:
            yield await self.queue.get()


class RecordingSink:
    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.trades: list[Trade] = []
        self.closed = False

    async def on_ticks(self, ticks: Sequence[Tick]) -> None:
        self.ticks.extend(ticks)

    async def on_trades(self, trades: Sequence[Trade]) -> None:
        self.trades.extend(trades)

    async def aclose(self) -> None:
        self.closed = True


@asynccontextmanager
async def running_feed(
    settings: Settings,
    provider: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    sinks: Sequence[TickSink] = (),
) -> AsyncIterator[MarketDataFeed]:
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    feed = MarketDataFeed(
        settings=settings, redis=redis, sessionmaker=sessionmaker, provider=provider, sinks=sinks
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        ready = asyncio.create_task(feed.ready.wait())
        await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert feed.ready.is_set(), "the feed did not start"
        yield feed
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        await redis.aclose()


async def cleanup_prefix(redis_url: str, prefix: str) -> None:
    raw = Redis.from_url(redis_url)
    try:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await raw.delete(*keys[i : i + 500])
    finally:
        await raw.aclose()


def loads(raw: Any) -> Any:
    return json.loads(raw)
