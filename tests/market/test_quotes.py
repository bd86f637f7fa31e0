"""marketPrice and the quotes subscription over the real API (HTTP and graphql-transport-ws),
fed by the real feed, with real Redis, a real matching shard and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection

from bourse.keys import quote_channel
from bourse.settings import Settings
from models.assets import Asset
from models.quotes import QuoteData, write_quotes
from resolvers.hub import ConflatingSubscriber, Hub
from tests.market.feed_helpers import (
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
from tests.support.server import Api, running_api

MARKET_PRICE = (
    "query($id: String!) { marketPrice(assetId: $id) { assetId price bid ask timestamp } }"
)
QUOTES = (
    "subscription($ids: [String!]!) { quotes(assetIds: $ids) { assetId price bid ask timestamp } }"
)


@dataclass
class QuotesEnv:
    api: Api
    settings: Settings
    redis: Redis
    sessionmaker: async_sessionmaker[AsyncSession]

    async def asset(self, price: str = "100.00") -> Asset:
        return await create_asset(self.settings, self.redis, self.sessionmaker, price=price)

    async def publish(self, symbol: str, price: str, at: datetime | None = None) -> QuoteData:
        quote = QuoteData(symbol, Decimal(price), None, None, at or datetime.now(UTC))
        await write_quotes(self.redis, self.settings.redis_prefix, [quote], publish=True)
        return quote


@pytest.fixture(scope="module")
async def qenv(settings: Settings, redis_url: str) -> AsyncIterator[QuotesEnv]:
    """An API of its own on a private Redis prefix (its own hub), one running shard."""
    prefix = f"test-quotes-{uuid.uuid4().hex[:10]}:"
    fs = feed_settings(settings, prefix)
    redis = Redis.from_url(redis_url)
    try:
        async with (
            database(fs) as sessionmaker,
            running_shards(redis_url, prefix),
            running_api(fs) as api,
        ):
            yield QuotesEnv(api, fs, redis, sessionmaker)
    finally:
        await redis.aclose()
        await cleanup_prefix(redis_url, prefix)


async def subscribe(conn: ClientConnection, ids: list[str], op_id: str = "q") -> None:
    await conn.send(
        json.dumps(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": QUOTES, "variables": {"ids": ids}},
            }
        )
    )


async def next_quote(
    conn: ClientConnection, timeout: float = 10.0, op_id: str = "q"
) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if msg.get("id") != op_id:
            continue
        if msg["type"] == "next":
            assert "errors" not in msg["payload"], msg
            quote: dict[str, Any] = msg["payload"]["data"]["quotes"]
            return quote
        if msg["type"] in {"error", "complete"}:
            raise AssertionError(msg)


async def quote_priced(conn: ClientConnection, symbol: str, price: str) -> dict[str, Any]:
    """Read quotes until ``symbol`` is at ``price``."""
    while True:
        q = await next_quote(conn)
        if q["assetId"] == symbol and Decimal(q["price"]) == Decimal(price):
            return q


# ---------------------------------------------------------------- marketPrice


async def test_market_price_falls_back_to_the_reference_price_and_the_books_bid_ask(
    qenv: QuotesEnv,
) -> None:
    asset = await qenv.asset("123.45")
    body = await qenv.api.gql(MARKET_PRICE, {"id": asset.symbol.lower()})
    assert body["data"]["marketPrice"]["assetId"] == asset.symbol
    assert body["data"]["marketPrice"]["price"] == "123.45"
    assert body["data"]["marketPrice"]["bid"] is None
    assert body["data"]["marketPrice"]["ask"] is None

    await place_limit(qenv.redis, qenv.settings, asset, "BUY", "123.00", "1")
    await place_limit(qenv.redis, qenv.settings, asset, "SELL", "124.00", "1")

    async def with_book() -> dict[str, Any] | None:
        q = (await qenv.api.gql(MARKET_PRICE, {"id": asset.symbol}))["data"]["marketPrice"]
        return q if q["bid"] == "123.00" and q["ask"] == "124.00" else None

    quote = await eventually(with_book)
    assert quote["price"] == "123.45"  # still the reference price: nothing traded


async def test_market_price_is_the_feeds_quote_and_the_last_trade(qenv: QuotesEnv) -> None:
    asset = await qenv.asset("50.00")
    provider = ScriptedProvider()
    async with running_feed(qenv.settings, provider, qenv.sessionmaker):
        provider.put(asset.symbol, "50.25")

        async def priced(price: str) -> dict[str, Any] | None:
            q = (await qenv.api.gql(MARKET_PRICE, {"id": asset.symbol}))["data"]["marketPrice"]
            return q if Decimal(q["price"]) == Decimal(price) else None

        await eventually(lambda: priced("50.25"))
        await place_limit(qenv.redis, qenv.settings, asset, "SELL", "50.40", "2")
        await place_limit(qenv.redis, qenv.settings, asset, "BUY", "50.40", "1")
        quote = await eventually(lambda: priced("50.40"))  # the venue's last trade
        assert quote["ask"] == "50.40"
        assert quote["bid"] is None
        assert datetime.fromisoformat(quote["timestamp"]) > datetime.now(UTC) - timedelta(
            seconds=30
        )


async def test_market_price_of_an_unknown_asset_is_null_with_not_found(qenv: QuotesEnv) -> None:
    for bad in ["NOPE-NOT-LISTED", "", "x" * 500, "'; DROP TABLE assets; --"]:
        body = await qenv.api.gql(MARKET_PRICE, {"id": bad})
        assert body["data"] == {"marketPrice": None}, bad
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body


# ---------------------------------------------------------------- the subscription


async def test_quotes_sends_the_current_quotes_then_every_update_from_the_feed(
    qenv: QuotesEnv,
) -> None:
    a, b = await qenv.asset("10.00"), await qenv.asset("20.00")
    provider = ScriptedProvider()
    async with qenv.api.ws() as conn:  # no token: quotes are public
        await subscribe(conn, [b.symbol, a.symbol.lower()])
        first, second = await next_quote(conn), await next_quote(conn)
        assert (first["assetId"], first["price"]) == (b.symbol, "20.00")
        assert (second["assetId"], second["price"]) == (a.symbol, "10.00")
        async with running_feed(qenv.settings, provider, qenv.sessionmaker):
            provider.put(a.symbol, "10.10")
            await quote_priced(conn, a.symbol, "10.10")
            provider.put(b.symbol, "19.90")
            provider.put(a.symbol, "10.20")
            seen: dict[str, str] = {}
            while seen.get(a.symbol) != "10.20" or seen.get(b.symbol) != "19.90":
                q = await next_quote(conn)
                seen[q["assetId"]] = q["price"]
            await place_limit(qenv.redis, qenv.settings, a, "SELL", "10.30", "1")
            q = await next_quote(conn)  # the book changed: a new ask
            assert (q["assetId"], q["ask"], q["bid"]) == (a.symbol, "10.30", None)


async def test_quotes_refuses_bad_input_with_clear_codes(qenv: QuotesEnv) -> None:
    asset = await qenv.asset()
    cases = [
        ([], "BAD_USER_INPUT"),
        ([asset.symbol] * 51, "TOO_MANY_ASSETS"),
        ([asset.symbol, "NOPE-NOT-LISTED"], "NOT_FOUND"),
    ]
    async with qenv.api.ws() as conn:
        for i, (ids, code) in enumerate(cases):
            result = await qenv.api.ws_execute(conn, QUOTES, {"ids": ids}, op_id=f"bad{i}")
            errors = result["errors"]
            assert errors[0]["extensions"]["code"] == code, result
        # The connection is still usable after refusals.
        await subscribe(conn, [asset.symbol], op_id="good")
        assert (await next_quote(conn, op_id="good"))["assetId"] == asset.symbol
    unknown = result["errors"][0]["extensions"]
    assert unknown["assetIds"] == ["NOPE-NOT-LISTED"]


async def test_subscribers_share_one_redis_subscription_per_channel(qenv: QuotesEnv) -> None:
    asset = await qenv.asset()
    channel = quote_channel(qenv.settings.redis_prefix, asset.symbol)
    async with qenv.api.ws() as c1, qenv.api.ws() as c2, qenv.api.ws() as c3:
        for conn in (c1, c2, c3):
            await subscribe(conn, [asset.symbol])
            await next_quote(conn)
        numsub = dict(await qenv.redis.pubsub_numsub(channel))
        assert numsub[channel.encode()] == 1
        await qenv.publish(asset.symbol, "101.01")
        for conn in (c1, c2, c3):
            await quote_priced(conn, asset.symbol, "101.01")
    # The last local subscriber gone, the hub unsubscribes.
    await eventually(lambda: _numsub(qenv.redis, channel, 0))


async def test_a_slow_subscriber_is_conflated_and_ends_on_the_latest_quote(
    qenv: QuotesEnv,
) -> None:
    a, b = await qenv.asset(), await qenv.asset()
    published = 20_000
    async with qenv.api.ws() as conn:
        await subscribe(conn, [a.symbol, b.symbol])
        await next_quote(conn)
        await next_quote(conn)
        # The client stops reading while the feed publishes a burst.
        start = datetime.now(UTC)
        for i in range(0, published, 500):
            quotes = [
                QuoteData(
                    s,
                    Decimal(100) + Decimal(j) / 100,
                    None,
                    None,
                    start + timedelta(microseconds=j),
                )
                for j in range(i, i + 500)
                for s in (a.symbol,)
            ]
            pipe = qenv.redis.pipeline(transaction=False)
            for q in quotes:
                pipe.publish(quote_channel(qenv.settings.redis_prefix, q.asset_id), q.to_json())
            await pipe.execute()
        await qenv.publish(b.symbol, "7.77", start + timedelta(seconds=1))
        await asyncio.sleep(1.0)
        received: list[dict[str, Any]] = []
        while True:
            try:
                received.append(await next_quote(conn, timeout=1.0))
            except TimeoutError:
                break
    last_a = [q for q in received if q["assetId"] == a.symbol][-1]
    assert Decimal(last_a["price"]) == Decimal(100) + Decimal(published - 1) / 100
    assert [q["price"] for q in received if q["assetId"] == b.symbol] == ["7.77"]
    assert len(received) < published / 2, len(received)  # conflated, not a backlog
    prices = [Decimal(q["price"]) for q in received if q["assetId"] == a.symbol]
    assert prices == sorted(prices)  # never an older quote after a newer one


async def test_a_conflating_subscriber_keeps_one_message_per_channel(redis_url: str) -> None:
    """Bounded memory whatever the backlog: the hub keeps the latest message per channel."""
    prefix = f"test-hub-{uuid.uuid4().hex[:8]}:"
    hub = Hub(redis_url, name=f"{prefix}hub")
    await hub.start()
    redis = Redis.from_url(redis_url)
    try:
        sub = ConflatingSubscriber()
        channels = [f"{prefix}c{i}" for i in range(3)]
        async with hub.subscription(channels, sub):
            pipe = redis.pipeline(transaction=False)
            for n in range(3000):
                pipe.publish(channels[n % 3], str(n))
            await pipe.execute()
            await eventually(lambda: _async(hub.stats.messages >= 3000))
            delivery = await sub.get()
        assert sorted(m.data for m in delivery.messages) == [b"2997", b"2998", b"2999"]
        assert sub.conflated == 2997
        assert not delivery.resync
    finally:
        await hub.close()
        await redis.aclose()


async def test_subscription_recovers_after_the_redis_connection_is_killed(
    qenv: QuotesEnv,
) -> None:
    asset = await qenv.asset("30.00")
    async with qenv.api.ws() as conn:
        await subscribe(conn, [asset.symbol])
        assert (await next_quote(conn))["price"] == "30.00"
        await qenv.publish(asset.symbol, "30.50")
        await quote_priced(conn, asset.symbol, "30.5")
        # Kill the API's pub/sub connection (only ours: the shared Redis serves other tests).
        hub_name = f"{qenv.settings.redis_prefix}api-hub"
        killed = 0
        for client in await qenv.redis.client_list(_type="pubsub"):
            if client.get("name") == hub_name:
                killed += await qenv.redis.client_kill_filter(_id=client["id"])
        assert killed == 1
        # Meanwhile a quote is written: nobody is subscribed, so it is only in the key.
        await qenv.publish(asset.symbol, "31.00")
        # After reconnecting, the hub makes the subscription resend the current quote ...
        await quote_priced(conn, asset.symbol, "31")
        # ... and live updates flow again.
        await eventually(
            lambda: _numsub(qenv.redis, quote_channel(qenv.settings.redis_prefix, asset.symbol), 1)
        )
        await qenv.publish(asset.symbol, "31.25")
        await quote_priced(conn, asset.symbol, "31.25")


async def _numsub(redis: Redis, channel: str, expected: int) -> bool:
    return bool(dict(await redis.pubsub_numsub(channel))[channel.encode()] == expected)


async def _async(value: Any) -> Any:
    return value


async def _next_raw(conn: ClientConnection, op_id: str) -> tuple[str, dict[str, Any]]:
    """The next ``next`` message of ``op_id``, as sent (text) and parsed."""
    while True:
        raw = await asyncio.wait_for(conn.recv(), 10.0)
        assert isinstance(raw, str)
        msg = json.loads(raw)
        if msg.get("id") == op_id and msg["type"] == "next":
            return raw, msg


async def test_one_quote_is_rendered_per_selection_and_each_subscriber_gets_its_own(
    qenv: QuotesEnv,
) -> None:
    """Subscribers of the same selection share the rendered payload of a quote (same bytes
    after the operation id), whatever their assets and ids; another selection, a fragment or
    a directive's variable still gets exactly what it asked for."""
    asset, other = await qenv.asset("50.00"), await qenv.asset("60.00")
    fragment = (
        "subscription($ids: [String!]!) { quotes(assetIds: $ids) { ...Q } } "
        "fragment Q on Quote { assetId price }"
    )
    with_bid = (
        "subscription($ids: [String!]!, $bid: Boolean!) { "
        "quotes(assetIds: $ids) { assetId price bid @include(if: $bid) } }"
    )
    async with qenv.api.ws() as c1, qenv.api.ws() as c2, qenv.api.ws() as c3, qenv.api.ws() as c4:
        await subscribe(c1, [asset.symbol], op_id="one")
        await subscribe(c2, [other.symbol, asset.symbol], op_id="two-ids")
        for conn, query, variables in (
            (c3, fragment, {"ids": [asset.symbol]}),
            (c4, with_bid, {"ids": [asset.symbol], "bid": False}),
        ):
            payload = {"query": query, "variables": variables}
            await conn.send(json.dumps({"id": "x", "type": "subscribe", "payload": payload}))
        for conn, op_id, snapshots in (
            (c1, "one", 1),
            (c2, "two-ids", 2),
            (c3, "x", 1),
            (c4, "x", 1),
        ):
            for _ in range(snapshots):
                await _next_raw(conn, op_id)
        at = datetime.now(UTC)
        await qenv.publish(asset.symbol, "50.25", at)
        raw1, m1 = await _next_raw(c1, "one")
        raw2, m2 = await _next_raw(c2, "two-ids")
        _, m3 = await _next_raw(c3, "x")
        _, m4 = await _next_raw(c4, "x")
    expected = {"assetId": asset.symbol, "price": "50.25", "bid": None, "ask": None,
                "timestamp": at.isoformat()}  # fmt: skip
    assert m1["payload"] == m2["payload"] == {"data": {"quotes": expected}}
    assert raw1.replace('"id":"one"', "") == raw2.replace('"id":"two-ids"', "")
    assert m3["payload"] == {"data": {"quotes": {"assetId": asset.symbol, "price": "50.25"}}}
    assert m4["payload"] == {"data": {"quotes": {"assetId": asset.symbol, "price": "50.25"}}}
