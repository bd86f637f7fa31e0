"""The market-data feed against real Redis, a real matching shard and the real database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.app.platform import child_commands
from bourse.keys import input_key, quote_channel
from bourse.keys import marketdata_lease_key as lease_key
from bourse.runtime import ServiceUrls
from bourse.settings import Settings
from models.assets import Assets
from models.corporate_actions import CorporateActions, SplitRequest
from models.exchange import Exchange
from models.ledger import Ledger
from models.quotes import QuoteData, read_quotes
from tests.market.feed_helpers import (
    RecordingSink,
    ScriptedProvider,
    cleanup_prefix,
    create_asset,
    database,
    feed_settings,
    place_limit,
    running_feed,
    running_shards,
)
from tests.support.polling import eventually
from workers.marketdata.feed import _cancel_all


@pytest.fixture
async def env(
    settings: Settings, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[Settings, Redis, async_sessionmaker[AsyncSession]]]:
    """Settings on a private prefix with one running shard, a Redis client and the database."""
    fs = feed_settings(settings, redis_prefix)
    redis = Redis.from_url(redis_url)
    try:
        async with database(fs) as sessionmaker, running_shards(redis_url, redis_prefix):
            yield fs, redis, sessionmaker
    finally:
        await redis.aclose()
        await cleanup_prefix(redis_url, redis_prefix)


Env = tuple[Settings, Redis, async_sessionmaker[AsyncSession]]


async def quote_of(redis: Redis, fs: Settings, symbol: str) -> QuoteData | None:
    return (await read_quotes(redis, fs.redis_prefix, [symbol])).get(symbol)


async def reference_commands(redis: Redis, fs: Settings, symbol: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(input_key(fs.redis_prefix, 0))
    cmds = [json.loads(fields[b"command"]) for _, fields in entries]
    return [c for c in cmds if c["cmd"] == "REFERENCE_PRICE" and c["asset_id"] == symbol]


async def test_a_tick_becomes_a_quote_a_reference_price_and_a_stored_price(env: Env) -> None:
    fs, redis, sessionmaker = env
    asset = await create_asset(fs, redis, sessionmaker, price="100.00")
    provider, sink = ScriptedProvider(), RecordingSink()
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(quote_channel(fs.redis_prefix, asset.symbol))
    try:
        async with running_feed(fs, provider, sessionmaker, [sink]):
            await eventually(lambda: _asked_for(provider, asset.symbol))
            provider.put(asset.symbol, "101.23")

            quote = await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "101.23"))
            assert quote.bid is None
            assert quote.ask is None
            assert quote.reference == Decimal("101.23")

            published = await eventually(lambda: pubsub.get_message(timeout=0.1))
            assert QuoteData.from_json(published["data"]) == quote

            refs = await eventually(lambda: reference_commands(redis, fs, asset.symbol))
            assert refs[-1]["price"] == 10123  # fixed point, the shard's price scale

            stored = await eventually(lambda: _stored_price(sessionmaker, asset.symbol, "101.23"))
            assert stored
            assert [t.price for t in sink.ticks if t.symbol == asset.symbol] == [Decimal("101.23")]
        assert sink.closed
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_reference_prices_are_throttled_per_asset(env: Env) -> None:
    fs, redis, sessionmaker = env
    fs = fs.model_copy(update={"marketdata_reference_interval_ms": 300})
    asset = await create_asset(fs, redis, sessionmaker)
    provider = ScriptedProvider()
    async with running_feed(fs, provider, sessionmaker):
        await eventually(lambda: _asked_for(provider, asset.symbol))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(60):  # 60 ticks over ~0.6 s
            provider.put(asset.symbol, f"{100 + i / 100:.2f}")
            await asyncio.sleep(0.01)
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "100.59"))
        await asyncio.sleep(0.4)
        elapsed = loop.time() - started
    refs = await reference_commands(redis, fs, asset.symbol)
    live = refs[1:]  # the first one is create_asset's (configure)
    assert 1 <= len(live) <= elapsed / 0.3 + 2, len(live)
    assert live[-1]["price"] == 10059  # the latest price always gets through


async def test_quote_takes_bid_ask_from_the_book_and_price_from_recent_trades(env: Env) -> None:
    fs, redis, sessionmaker = env
    fs = fs.model_copy(update={"marketdata_trade_fresh_seconds": 1.5})
    asset = await create_asset(fs, redis, sessionmaker, price="100.00")
    provider, sink = ScriptedProvider(), RecordingSink()
    async with running_feed(fs, provider, sessionmaker, [sink]):
        await eventually(lambda: _asked_for(provider, asset.symbol))
        provider.put(asset.symbol, "100.50")
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "100.5"))

        await place_limit(redis, fs, asset, "BUY", "99.00", "2")
        await place_limit(redis, fs, asset, "SELL", "101.00", "3")
        quote = await eventually(lambda: _quote_with(redis, fs, asset.symbol, "99", "101"))
        assert quote.price == Decimal("100.5")  # no trade yet: the reference price

        await place_limit(redis, fs, asset, "BUY", "101.00", "0.5")  # takes 0.5 at 101
        quote = await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "101"))
        assert quote.last_trade == Decimal("101.00")
        assert quote.ask == Decimal("101.00")
        assert quote.bid == Decimal("99.00")
        trade = (await eventually(lambda: _trades(sink)))[0]
        assert (trade.asset_id, trade.price, trade.quantity, trade.taker_side) == (
            asset.symbol,
            Decimal("101.00"),
            Decimal("0.500000"),
            "BUY",
        )
        assert trade.fill_id == f"{asset.symbol}:1"

        provider.put(asset.symbol, "100.70")  # a tick while the trade is recent: trade wins
        await asyncio.sleep(0.2)
        q = await quote_of(redis, fs, asset.symbol)
        assert q is not None
        assert q.price == Decimal("101")
        assert q.reference == Decimal("100.70")

        await asyncio.sleep(1.5)  # the trade is stale now: the reference price is the price
        provider.put(asset.symbol, "100.80")
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "100.8"))


async def test_the_feed_resumes_trades_after_a_restart(env: Env) -> None:
    """Trades that happen while no feed runs are read (once) by the next feed."""
    fs, redis, sessionmaker = env
    asset = await create_asset(fs, redis, sessionmaker, price="50.00")
    first = RecordingSink()
    async with running_feed(fs, ScriptedProvider(), sessionmaker, [first]):
        await place_limit(redis, fs, asset, "SELL", "50.00", "1")
        await place_limit(redis, fs, asset, "BUY", "50.00", "1")
        await eventually(lambda: _trades(first))
    await place_limit(redis, fs, asset, "SELL", "51.00", "1")
    await place_limit(redis, fs, asset, "BUY", "51.00", "1")
    second = RecordingSink()
    async with running_feed(fs, ScriptedProvider(), sessionmaker, [second]):
        trades = await eventually(lambda: _trades(second))
        await asyncio.sleep(0.3)
    assert [t.fill_id for t in first.trades] == [f"{asset.symbol}:1"]
    assert [t.fill_id for t in second.trades] == [f"{asset.symbol}:2"]
    assert trades[0].price == Decimal("51.00")


async def test_new_assets_join_the_provider(env: Env) -> None:
    fs, redis, sessionmaker = env
    provider = ScriptedProvider()
    async with running_feed(fs, provider, sessionmaker):
        await eventually(lambda: _async(bool(provider.calls)))
        later = await create_asset(fs, redis, sessionmaker)
        await eventually(lambda: _asked_for(provider, later.symbol))
        provider.put(later.symbol, "42.00")
        await eventually(lambda: _quote_priced(redis, fs, later.symbol, "42"))


async def test_a_stock_split_rescales_the_feeds_prices(env: Env) -> None:
    """After a 2-for-1 split the feed's quote, its reference to the engine and the stored
    price are halved (it does not put the pre-split price back), and the provider restarts
    from the new price."""
    fs, redis, sessionmaker = env
    asset = await create_asset(fs, redis, sessionmaker, price="100.00")
    provider = ScriptedProvider()
    async with running_feed(fs, provider, sessionmaker):
        await eventually(lambda: _asked_for(provider, asset.symbol))
        provider.put(asset.symbol, "100.00")
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "100.00"))
        calls = len(provider.calls)
        actions = CorporateActions(
            sessionmaker, Ledger(), exchange=Exchange(redis, fs.redis_prefix, 1)
        )
        today = datetime.now(UTC).date()
        done = await actions.record_split(uuid.uuid4(), SplitRequest(asset.symbol, 2, 1, today))
        assert done.status.value == "APPLIED"
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "50.00"))
        await eventually(lambda: _async(len(provider.calls) > calls))  # restarted
        await eventually(
            lambda: _last_reference_is(redis, fs, asset.symbol, 5000), what="reference 50.00"
        )
        await asyncio.sleep(0.6)  # a persist and an assets refresh later: still 50.00
        stored = await Assets(sessionmaker, _no_market).get(asset.symbol)
        assert stored is not None
        assert stored.reference_price == Decimal("50.00")
        q = await quote_of(redis, fs, asset.symbol)
        assert q is not None
        assert q.price == Decimal("50.00")


async def test_the_feed_notices_a_split_when_the_engine_applies_it(env: Env) -> None:
    """With an hour between asset refreshes, the feed still rescales its prices as soon as
    the shard's SPLIT_APPLIED comes in (it reads the events stream for trades anyway)."""
    fs, redis, sessionmaker = env
    fs = fs.model_copy(update={"marketdata_assets_refresh_seconds": 3600})
    asset = await create_asset(fs, redis, sessionmaker, price="100.00")
    provider = ScriptedProvider()
    async with running_feed(fs, provider, sessionmaker):
        await eventually(lambda: _asked_for(provider, asset.symbol))
        provider.put(asset.symbol, "100.00")
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "100.00"))
        actions = CorporateActions(
            sessionmaker, Ledger(), exchange=Exchange(redis, fs.redis_prefix, 1)
        )
        today = datetime.now(UTC).date()
        done = await actions.record_split(uuid.uuid4(), SplitRequest(asset.symbol, 2, 1, today))
        assert done.status.value == "APPLIED"
        await eventually(
            lambda: _last_reference_is(redis, fs, asset.symbol, 5000),
            timeout=10,
            what="the feed's reference in post-split prices",
        )
        provider.put(asset.symbol, "50.10")  # the provider, restarted, quotes the new price
        await eventually(lambda: _quote_priced(redis, fs, asset.symbol, "50.10"), timeout=10)


async def _last_reference_is(redis: Redis, fs: Settings, symbol: str, price: int) -> bool:
    refs = await reference_commands(redis, fs, symbol)
    return bool(refs) and refs[-1]["price"] == price


async def test_one_feed_per_prefix_the_second_stands_by(env: Env) -> None:
    fs, redis, sessionmaker = env
    async with running_feed(fs, ScriptedProvider(), sessionmaker) as first:
        holder = await redis.get(lease_key(fs.redis_prefix))
        assert holder is not None
        standby_stop = asyncio.Event()
        from workers.marketdata.feed import MarketDataFeed

        standby = MarketDataFeed(
            settings=fs, redis=redis, sessionmaker=sessionmaker, provider=ScriptedProvider()
        )
        task = asyncio.create_task(standby.run(standby_stop))
        await asyncio.sleep(0.5)
        assert not standby.ready.is_set()
        assert first.ready.is_set()
    # The first released its lease on the way out: the standby takes over.
    await asyncio.wait_for(standby.ready.wait(), 5)
    standby_stop.set()
    await asyncio.wait_for(task, 10)
    assert await redis.get(lease_key(fs.redis_prefix)) is None


# ---------------------------------------------------------------- helpers


async def _async(value: Any) -> Any:
    return value


async def _asked_for(provider: ScriptedProvider, symbol: str) -> bool:
    return any(symbol in call for call in provider.calls)


async def _quote_priced(redis: Redis, fs: Settings, symbol: str, price: str) -> QuoteData | None:
    q = await quote_of(redis, fs, symbol)
    return q if q is not None and q.price == Decimal(price) else None


async def _quote_with(
    redis: Redis, fs: Settings, symbol: str, bid: str, ask: str
) -> QuoteData | None:
    q = await quote_of(redis, fs, symbol)
    ok = q is not None and q.bid == Decimal(bid) and q.ask == Decimal(ask)
    return q if ok else None


async def _trades(sink: RecordingSink) -> list[Any]:
    return list(sink.trades)


async def _stored_price(
    sessionmaker: async_sessionmaker[AsyncSession], symbol: str, price: str
) -> bool:
    asset = await Assets(sessionmaker, _no_market).get(symbol)
    return asset is not None and asset.reference_price == Decimal(price)


async def _no_market(assets: Any) -> None:
    return None


async def test_the_feed_process_runs_under_bourse_up_and_stops_cleanly(
    env: Env, redis_url: str
) -> None:
    """``python -m workers.marketdata`` (what ``bourse up`` supervises): the synthetic provider
    prices every listed asset; SIGTERM flushes, releases the lease and exits 0."""
    fs, redis, sessionmaker = env
    asset = await create_asset(fs, redis, sessionmaker, price="77.00")
    urls = ServiceUrls(database_url=fs.database_url or "", redis_url=redis_url, embedded=False)
    assert ("marketdata-feed", [sys.executable, "-m", "workers.marketdata"]) in child_commands(
        fs, urls
    )
    env_vars = {
        **os.environ,
        "DATABASE_URL": fs.database_url or "",
        "REDIS_URL": redis_url,
        "BOURSE_REDIS_PREFIX": fs.redis_prefix,
        "BOURSE_MATCHING_SHARDS": "1",
        "BOURSE_MARKETDATA_SEED": "11",
        "BOURSE_MARKETDATA_TICKS_PER_SECOND": "10",
        "BOURSE_MARKETDATA_SINKS": "[]",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.marketdata", env=env_vars
    )
    try:

        async def moved() -> QuoteData | None:
            q = await quote_of(redis, fs, asset.symbol)
            return q if q is not None and q.reference is not None else None

        quote = await eventually(moved, timeout=30)
        assert quote.price > 0
        assert await redis.get(lease_key(fs.redis_prefix)) is not None
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
    assert await redis.get(lease_key(fs.redis_prefix)) is None


async def test_a_loop_that_swallows_its_cancel_does_not_stop_the_feed_restarting() -> None:
    """After Redis was unreachable a few seconds the feed's restart (lease lost) sometimes
    waited for ever on one loop still "cancelling": its cancel had been swallowed inside a
    Redis call. The loops are cancelled again, and the wait is bounded."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a library that turns the cancel into an error would

    released = asyncio.Event()

    async def obstinate() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)

    polite = asyncio.create_task(asyncio.sleep(30))
    once = asyncio.create_task(stubborn(), name="stubborn")
    never = asyncio.create_task(obstinate(), name="obstinate")
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await _cancel_all([polite, once, never])
    assert asyncio.get_running_loop().time() - started < 10
    assert polite.cancelled()
    assert once.cancelled()
    assert swallowed == 1
    assert not never.done()  # left behind (logged), not waited on for ever
    released.set()
    never.cancel()
    await never
