"""Redis faults against the whole platform, each in the middle of a burst of orders: Redis
restarted empty (`SHUTDOWN NOSAVE`, its files gone), Redis unreachable for 10 s (SIGSTOP, then
back with its data), and Redis (`appendfsync everysec`) SIGKILLed with the last second of its
AOF lost. Nothing is restarted but Redis itself. And the reconciler: orders whose commands the
outbox marked sent but that never reached the engine still execute.

Afterwards: `/readyz` is 200 again within READY_BOUND_S of Redis being back, an order that
rested before the fault rests again (with its hold) and can be cancelled, a market order
executes, every accepted order ends final or resting, no fill is applied twice, the ledger
check is clean and no hold is left behind (`tests/support/faults.py`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from typing import Any

from sqlalchemy import select

from bourse.keys import events_key, shard_for
from models.exchange import Exchange
from models.matching_epochs import MatchingEpoch
from models.orders import Order, OrderBook, OrderStatus, OrderSubType, PlaceOrderRequest, Side
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    CANCEL,
    FINAL,
    ORDER,
    PLACE,
    cancel_open_orders,
    list_asset,
    trader,
    wait_book,
)
from tests.resilience.conftest import Platform, traders
from tests.support.faults import (
    Burst,
    assert_consistent,
    place_resting,
    quiescent,
    resting_survived,
    run_burst,
    wait_ready,
)
from tests.support.polling import eventually
from tests.support.server import Api

READY_BOUND_S = 20.0  # /readyz 200 again within this long of Redis being back
REQUEST_BOUND_S = 8.0  # no request waits longer than this on a dead Redis


async def _market_order_executes(api: Api, token: str, sym: str) -> None:
    """A market order placed after the recovery executes. The burst may just have emptied the
    ask side (the order then ends CANCELLED NO_LIQUIDITY, as it should): a client tries again,
    and within the bound one fills."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    outcomes: list[str] = []
    while loop.time() < deadline:
        body = await api.gql(
            PLACE,
            {"input": {"assetId": sym, "orderType": "BUY", "orderSubType": "MARKET",
                       "quantity": "1"}},
            token,
        )  # fmt: skip
        order_id = body["data"]["placeOrder"]["order"]["id"]

        async def final(order_id: str = order_id) -> dict[str, Any]:
            got = await api.gql(ORDER, {"id": order_id}, token)
            order: dict[str, Any] = got["data"]["order"]
            return order

        order = await eventually(
            final, lambda o: o["status"] in FINAL, timeout=15, what="the market order ended"
        )
        if order["status"] == "EXECUTED":
            return
        outcomes.append(f"{order['status']} {order['cancelReason']}")
        await asyncio.sleep(0.5)
    raise AssertionError(f"no market order executed after the recovery: {outcomes}")


async def _after_the_fault(
    p: Platform,
    api: Api,
    tokens: list[str],
    user_ids: list[uuid.UUID],
    sym: str,
    out: Burst,
    resting: str,
) -> None:
    """The checks every Redis fault ends with (module docstring)."""
    services = p.services
    # A trader of its own: the burst's traders rest orders at the top of the book, which their
    # own market order would meet (and self-trade prevention cancel).
    fresh, fresh_id = await trader(api, "100000")
    await _market_order_executes(api, fresh, sym)
    tokens, user_ids = [*tokens, fresh], [*user_ids, fresh_id]
    await quiescent(services, user_ids)
    await resting_survived(api, services, tokens[0], resting, "63.89")
    await cancel_open_orders(api, services, dict(zip(user_ids, tokens, strict=True)))
    await quiescent(services, user_ids)
    fills = await assert_consistent(services, user_ids, out.accepted, sym)
    assert len(out.accepted) > 20, f"too few orders to prove anything: {out}"
    assert len(fills) > 10, "too few fills to prove anything"


async def test_redis_restarted_empty_mid_burst(platform: Platform) -> None:
    p = platform
    services = p.services
    sym = symbol("RE")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, p.stack.shards)
    async with p.stack.client() as api:
        tokens, user_ids = await traders(api, services, sym)
        resting = await place_resting(api, tokens[0], sym, "63.89")

        out = Burst()
        stop, tasks = await run_burst(api, tokens, sym, out)
        await asyncio.sleep(2.5)
        await p.redis.shutdown_nosave()
        shutil.rmtree(p.redis.dir / "appendonlydir", ignore_errors=True)  # restarted EMPTY
        await asyncio.sleep(1.0)
        await p.redis.start()
        ready = asyncio.create_task(wait_ready(api, READY_BOUND_S))  # from Redis being back
        await asyncio.sleep(4.0)
        stop.set()
        await asyncio.gather(*tasks)
        ready_after = await ready
        print(f"redis restarted empty: /readyz 200 {ready_after:.1f}s after Redis was back")
        assert out.unavailable > 0, "no order was refused while Redis was down"
        assert out.failed == 0, f"requests failed without an answer: {out}"

        await _after_the_fault(p, api, tokens, user_ids, sym, out, resting)

    async with services.sessionmaker() as s:
        epoch = await s.get(MatchingEpoch, shard)
        assert epoch is not None
        assert epoch.origin == "rebuilt"
        assert epoch.rebuilds >= 1
        order = await s.scalar(select(Order).where(Order.id == resting))
        assert order is not None
        assert order.status is OrderStatus.CANCELLED


async def test_redis_unreachable_for_10_seconds(platform: Platform) -> None:
    p = platform
    services = p.services
    sym = symbol("RU")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    async with p.stack.client() as api:
        tokens, user_ids = await traders(api, services, sym)
        resting = await place_resting(api, tokens[0], sym, "63.89")

        out = Burst()
        stop, tasks = await run_burst(api, tokens, sym, out)
        await asyncio.sleep(2.5)
        p.redis.pause()
        try:
            await asyncio.sleep(1.0)
            # While it is unreachable: answers within a bound, saying what is down.
            started = time.monotonic()
            probe = await api.http.get("/readyz", timeout=30)
            assert time.monotonic() - started < REQUEST_BOUND_S
            assert probe.status_code == 503, probe.text
            assert "redis" in probe.json()["down"], probe.text
            started = time.monotonic()
            refused = await api.gql(
                PLACE,
                {"input": {"assetId": sym, "orderType": "BUY", "orderSubType": "MARKET",
                           "quantity": "1"}},
                tokens[2],
            )  # fmt: skip
            assert time.monotonic() - started < REQUEST_BOUND_S
            codes = [e["code"] for e in refused["data"]["placeOrder"]["errors"]]
            assert codes == ["SERVICE_UNAVAILABLE"], refused
            await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - started) - 1.0))
        finally:
            p.redis.resume()
        ready = asyncio.create_task(wait_ready(api, READY_BOUND_S))  # from Redis being back
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*tasks)
        ready_after = await ready
        print(f"redis unreachable 10 s: /readyz 200 {ready_after:.1f}s after Redis was back")
        assert out.unavailable > 0, "no order was refused while Redis was unreachable"
        assert out.failed == 0, f"requests failed without an answer: {out}"

        await _after_the_fault(p, api, tokens, user_ids, sym, out, resting)


async def test_orders_whose_commands_were_lost_still_execute(platform: Platform) -> None:
    """The outbox marked the commands sent, but they went where no shard reads (as into a Redis
    that then lost them): the shard's reconciler finds the open orders it does not have and
    puts them back; the market order executes, the limit order rests."""
    p = platform
    services = p.services
    sym = symbol("RL")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, p.stack.shards)
    async with services.sessionmaker() as s:
        before = await s.get(MatchingEpoch, shard)
        repairs_before = before.repairs if before is not None else 0
    lost = Exchange(services.redis, f"{p.stack.prefix}lost:", p.stack.shards)
    book = OrderBook(
        services.sessionmaker,
        services.ledger,
        lost,
        services.orders._reference_price,  # the platform's own anchor
        services.orders.config,
    )
    async with p.stack.client() as api:
        token, user_id = await trader(api, "100000")
        market = await book.place(
            user_id,
            PlaceOrderRequest(sym, Side.BUY, OrderSubType.MARKET, quantity="2"),
        )
        limit = await book.place(
            user_id,
            PlaceOrderRequest(sym, Side.BUY, OrderSubType.LIMIT, quantity="1", price="71.00"),
        )
        await book.aclose()  # the sent-marks are written

        async def status(order_id: uuid.UUID) -> OrderStatus:
            async with services.sessionmaker() as s:
                order = await s.get(Order, order_id)
            assert order is not None
            return order.status

        await eventually(
            lambda: status(market.id),
            lambda st: st is OrderStatus.EXECUTED,
            timeout=30,
            what="the lost market order executed",
        )
        cancelled = (await api.gql(CANCEL, {"id": str(limit.id)}, token))["data"]["cancelOrder"]
        assert cancelled["order"]["status"] == "CANCELLED", cancelled
        await quiescent(services, [user_id])
        await assert_consistent(services, [user_id], [str(market.id), str(limit.id)], sym)
    async with services.sessionmaker() as s:
        after = await s.get(MatchingEpoch, shard)
        assert after is not None
        assert after.repairs >= repairs_before + 2


async def test_the_last_second_of_the_aof_lost(platform: Platform) -> None:
    """Redis with `appendfsync everysec` SIGKILLed, and the AOF cut back to where it was a
    second before (the writes the OS had not flushed): orders the outbox marked sent that the
    engine never saw (and events settled that Redis lost) are found and put right."""
    p = platform
    services = p.services
    sym = symbol("RA")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    async with p.stack.client() as api:
        tokens, user_ids = await traders(api, services, sym)
        resting = await place_resting(api, tokens[0], sym, "63.89")

        out = Burst()
        stop, tasks = await run_burst(api, tokens, sym, out)
        await asyncio.sleep(2.5)
        aof = max(p.redis.dir.rglob("*.incr.aof"), key=lambda f: f.stat().st_mtime)
        durable = aof.stat().st_size
        await asyncio.sleep(1.0)
        await p.redis.kill()
        lost = aof.stat().st_size - durable
        with aof.open("r+b") as f:
            f.truncate(durable)
        await p.redis.start()
        ready = asyncio.create_task(wait_ready(api, READY_BOUND_S))  # from Redis being back
        await asyncio.sleep(4.0)
        stop.set()
        await asyncio.gather(*tasks)
        ready_after = await ready
        print(f"aof last second lost ({lost} bytes): /readyz 200 {ready_after:.1f}s after")
        assert lost > 0, "nothing was written in the last second: nothing lost to prove"

        await _after_the_fault(p, api, tokens, user_ids, sym, out, resting)
        # Settlement keeps nothing pending for ever (an entry the stream lost would hold the
        # events trimmer back): its pending list drains, on every shard.
        for shard in range(p.stack.shards):
            stream = events_key(p.stack.prefix, shard)

            async def pending(stream: str = stream) -> int:
                info = await p.services.redis.xpending(stream, "settlement")
                return int(info["pending"])

            await eventually(
                pending,
                lambda n: n == 0,
                timeout=15,
                what=f"settlement's pending list on {stream} drained",
            )
