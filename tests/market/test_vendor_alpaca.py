"""The Alpaca market-data adapter (``BOURSE_MARKETDATA_PROVIDER=alpaca``) against a local server
speaking Alpaca's documented protocol: authentication, subscription, trades and quotes as
ticks, the error codes, disconnects with reconnects, malformed messages and a slow consumer;
and end to end, the vendor's prices as ``marketPrice`` and on the ``quotes`` subscription."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from decimal import Decimal
from typing import cast

from redis.asyncio import Redis

from bourse.settings import Settings
from models.calendars import ALWAYS_OPEN
from tests.market.alpaca_server import AlpacaServer, quote, trade
from tests.market.feed_helpers import (
    cleanup_prefix,
    create_asset,
    database,
    feed_settings,
    running_feed,
    running_shards,
)
from tests.market.test_quotes import MARKET_PRICE, quote_priced, subscribe
from tests.support.polling import eventually
from tests.support.server import running_api
from workers.marketdata.providers import Instrument, Tick
from workers.marketdata.selection import load_provider
from workers.marketdata.vendor import AlpacaProvider, parse_time

KEY, SECRET = "PKTEST", "s3cret"
D = Decimal


def provider(server: AlpacaServer, crypto_url: str | None = None, **kw: float) -> AlpacaProvider:
    return AlpacaProvider(
        KEY, SECRET, stocks_url=server.url, crypto_url=crypto_url or server.url,
        min_backoff_seconds=kw.get("min_backoff", 0.05),
        max_backoff_seconds=kw.get("max_backoff", 0.5),
        handshake_timeout_seconds=5,
    )  # fmt: skip


def stock(symbol: str, price: str = "100.00") -> Instrument:
    return Instrument(symbol, D(price), D("0.01"), ALWAYS_OPEN)


@contextlib.asynccontextmanager
async def consuming(
    p: AlpacaProvider, instruments: list[Instrument]
) -> AsyncIterator[asyncio.Queue[Tick]]:
    """Ticks of ``p`` read into a queue by a task (as the feed reads them)."""
    out: asyncio.Queue[Tick] = asyncio.Queue()

    async def read() -> None:
        async for tick in p.ticks(instruments):
            out.put_nowait(tick)

    task = asyncio.create_task(read())
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_tick(q: asyncio.Queue[Tick], timeout: float = 10) -> Tick:
    return await asyncio.wait_for(q.get(), timeout)


async def test_authenticates_subscribes_and_turns_trades_and_quotes_into_ticks() -> None:
    async with AlpacaServer(KEY, SECRET) as server, AlpacaServer(KEY, SECRET) as crypto:
        p = provider(server, crypto.url)
        btc = Instrument("BTC-USD", D("90000"), D("0.01"), "24x7")
        async with consuming(p, [stock("AAPL"), btc]) as ticks:
            await server.wait_subscribed("AAPL")
            await crypto.wait_subscribed("BTC/USD")
            # What the adapter said, in the documented order and shapes.
            assert server.received[0] == {"action": "auth", "key": KEY, "secret": SECRET}
            assert server.received[1] == {
                "action": "subscribe",
                "trades": ["AAPL"],
                "quotes": ["AAPL"],
            }
            assert crypto.received[1]["trades"] == ["BTC/USD"]  # Alpaca's crypto symbol
            await server.push(trade("AAPL", "173.06", 25, at="2024-07-24T13:30:00.123456789Z"))
            t = await next_tick(ticks)
            assert (t.symbol, t.price, t.size) == ("AAPL", D("173.06"), D(25))
            assert t.timestamp == parse_time("2024-07-24T13:30:00.123456Z")
            assert t.timestamp.utcoffset() is not None
            await server.push(quote("AAPL", "173.05", "173.08"))
            q = await next_tick(ticks)
            assert (q.price, q.size) == (D("173.06"), None)  # mid 173.065, half-even on 0.01
            await server.push(trade("AAPL", "173.0649"))  # a sub-penny print: onto the grid
            assert (await next_tick(ticks)).price == D("173.06")
            await crypto.push(trade("BTC/USD", "91250.5"))
            c = await next_tick(ticks)
            assert (c.symbol, c.price) == ("BTC-USD", D("91250.50"))
            assert isinstance(c.price, Decimal)


async def test_malformed_messages_are_skipped_and_the_stream_goes_on() -> None:
    async with AlpacaServer(KEY, SECRET) as server:
        p = provider(server)
        async with consuming(p, [stock("MSFT")]) as ticks:
            await server.wait_subscribed("MSFT")
            await server.push_raw("not json")
            await server.push_raw('{"T": "t", "S": "MSFT"}')  # an object, not an array
            await server.push_raw('[42, "x"]')
            await server.push(
                {"T": "t", "S": "MSFT", "t": "2024-07-24T13:30:00Z"},  # no price
                {**trade("MSFT", "1"), "p": "abc"},
                {**trade("MSFT", "1"), "p": -5},
                {**trade("MSFT", "1"), "t": "yesterday"},
                {**quote("MSFT", "10", "9")},  # crossed: no midpoint
                {**trade("MSFT", "1"), "S": "NOTASKED"},
            )
            await server.push(trade("MSFT", "410.10"))
            t = await next_tick(ticks)
            assert t.price == D("410.10")
            assert p.stats.malformed >= 9
            assert p.stats.connects == 1  # none of that cost the connection


async def test_disconnects_and_slow_client_errors_reconnect_and_resubscribe() -> None:
    async with AlpacaServer(KEY, SECRET) as server:
        p = provider(server)
        async with consuming(p, [stock("TSLA")]) as ticks:
            await server.wait_subscribed("TSLA")
            await server.push(trade("TSLA", "250.00"))
            assert (await next_tick(ticks)).price == D("250.00")
            await server.drop_all()  # the line drops
            await server.wait_subscribed("TSLA")
            await server.push(trade("TSLA", "251.00"))
            assert (await next_tick(ticks)).price == D("251.00")
            await server.drop_all(407, "slow client")
            await server.wait_subscribed("TSLA")
            await server.push(trade("TSLA", "252.00"))
            assert (await next_tick(ticks)).price == D("252.00")
            assert server.connects == 3
            assert p.stats.errors == {407: 1}
            auths = [m for m in server.received if m.get("action") == "auth"]
            assert len(auths) == 3  # authenticated again each time


async def test_refused_credentials_and_connection_limit_back_off_without_ending() -> None:
    async with AlpacaServer(KEY, "other-secret") as server:
        p = provider(server, min_backoff=0.05, max_backoff=0.4)
        async with consuming(p, [stock("SPY")]):
            await asyncio.sleep(1.5)
        # 402 each time, retried at the longest backoff (0.2-0.4 s), not in a tight loop.
        assert p.stats.errors.get(402, 0) >= 2
        assert server.connects <= 9
    async with AlpacaServer(KEY, SECRET) as server:
        server.connection_limit = 0  # another client holds the account's one connection
        p = provider(server, min_backoff=0.05, max_backoff=0.3)
        async with consuming(p, [stock("SPY")]) as ticks:
            await eventually(lambda: asyncio.sleep(0, p.stats.errors.get(406, 0) >= 2), timeout=5)
            server.connection_limit = 1  # it let go
            await server.wait_subscribed("SPY")
            await server.push(trade("SPY", "600.01"))
            assert (await next_tick(ticks)).price == D("600.01")


async def test_a_slow_consumer_gets_the_latest_price_with_bounded_memory() -> None:
    async with AlpacaServer(KEY, SECRET) as server:
        p = provider(server)
        symbols = ["AAA", "BBB", "CCC"]
        stream = cast(AsyncGenerator[Tick, None], p.ticks([stock(s) for s in symbols]))
        first = asyncio.create_task(anext(stream))
        await server.wait_subscribed("AAA")
        await server.push(trade("CCC", "1.00"))
        assert (await first).symbol == "CCC"
        for i in range(1, 2001):  # 4,000 data points while the consumer takes none
            await server.push(
                trade("AAA", f"{100 + i / 100:.2f}"), trade("BBB", f"{50 + i / 100:.2f}")
            )
        buffer = p.buffer
        assert buffer is not None
        await eventually(lambda: asyncio.sleep(0, buffer.replaced >= 3000), timeout=10)
        assert len(buffer.waiting) == 2  # one tick per symbol waiting, never more
        seen: dict[str, Decimal] = {}
        for _ in range(2):
            tick = await asyncio.wait_for(anext(stream), 5)
            seen[tick.symbol] = tick.price
        assert seen == {"AAA": D("120.00"), "BBB": D("70.00")}  # the newest, nothing stale
        await stream.aclose()


async def test_selected_by_setting_and_prices_reach_market_price_and_quotes(
    settings: Settings, redis_url: str
) -> None:
    async with AlpacaServer(KEY, SECRET) as server:
        prefix = f"test-alpaca-{uuid.uuid4().hex[:10]}:"
        fs = feed_settings(
            settings, prefix, marketdata_provider="alpaca", alpaca_key_id=KEY,
            alpaca_secret_key=SECRET, alpaca_stocks_url=server.url, alpaca_crypto_url=server.url,
        )  # fmt: skip
        chosen = load_provider(fs)
        assert isinstance(chosen, AlpacaProvider)
        assert chosen.stocks_url == server.url
        redis = Redis.from_url(redis_url)
        try:
            async with (
                database(fs) as sessionmaker,
                running_shards(redis_url, prefix),
                running_api(fs) as api,
            ):
                asset = await create_asset(fs, redis, sessionmaker, price="100.00")
                async with running_feed(fs, chosen, sessionmaker):
                    vendor_name = asset.symbol.replace("-", "/")
                    await server.wait_subscribed(vendor_name)
                    async with api.ws() as conn:
                        await subscribe(conn, [asset.symbol])
                        await server.push(trade(vendor_name, "101.25"))
                        live = await quote_priced(conn, asset.symbol, "101.25")
                        assert live["assetId"] == asset.symbol
                        await server.push(trade(vendor_name, "101.50"))
                        await quote_priced(conn, asset.symbol, "101.50")

                    async def market_price() -> str:
                        body = await api.gql(MARKET_PRICE, {"id": asset.symbol})
                        price: str = body["data"]["marketPrice"]["price"]
                        return price

                    assert D(await eventually(market_price, lambda p: D(p) == D("101.50"))) == D(
                        "101.50"
                    )
        finally:
            await redis.aclose()
            await cleanup_prefix(redis_url, prefix)
