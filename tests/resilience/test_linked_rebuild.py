"""Linked orders through a Redis loss, and the reconciler's remaining-quantity repair (issue 20
item 1; docs/ARCHITECTURE.md, "Losing Redis").

A bracket whose entry has filled 3 of 10 (its exits active for 3) and an OCO pair resting when
Redis restarts empty: the shard rebuilds both groups from PostgreSQL with their state, and
afterwards they behave exactly as before: the take-profit's fill cancels its stop and the
entry's remainder, the OCO's stop triggers, sells, and cancels its take-profit; every hold is
released once, the ledger balances, no hold is left without an open order.

Then a drift injected into PostgreSQL (an order's quantity lowered behind the engine's back):
the reconciler gives the engine PostgreSQL's remaining quantity, counts the repair, and the
order never fills beyond what PostgreSQL holds.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from decimal import Decimal

from sqlalchemy import update

from bourse.keys import shard_for
from models.matching_epochs import MatchingEpoch
from models.orders import Order
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    FINAL,
    cancel_open_orders,
    grant_shares,
    list_asset,
    placed,
    shares,
    trader,
)
from tests.orders.test_brackets import bracket, get_order, place, wait_for
from tests.resilience.conftest import Platform
from tests.support.faults import assert_consistent, quiescent, wait_ready
from tests.support.polling import eventually
from tests.support.server import Api

D = Decimal
READY_BOUND_S = 20.0  # /readyz 200 again within this long of Redis being back


async def _epoch(p: Platform, shard: int) -> tuple[int, int]:
    async with p.services.sessionmaker() as s:
        row = await s.get(MatchingEpoch, shard)
    return (0, 0) if row is None else (row.rebuilds, row.repairs)


async def _restart_redis_empty(p: Platform, api: Api, shard: int) -> None:
    rebuilds, _ = await _epoch(p, shard)
    await p.redis.shutdown_nosave()
    shutil.rmtree(p.redis.dir / "appendonlydir", ignore_errors=True)  # restarted EMPTY
    await p.redis.start()
    ready_after = await wait_ready(api, READY_BOUND_S)
    print(f"redis restarted empty: /readyz 200 {ready_after:.1f}s after Redis was back")
    await eventually(
        lambda: _epoch(p, shard),
        lambda e: e[0] > rebuilds,
        timeout=30,
        what="the shard rebuilt from PostgreSQL",
    )


async def test_a_bracket_and_an_oco_survive_redis_restarted_empty(platform: Platform) -> None:
    p = platform
    services = p.services
    sym = symbol("LB")
    await list_asset(services, sym, "100.00")
    shard = shard_for(sym, p.stack.shards)
    async with p.stack.client() as api:
        buyer, buyer_id = await trader(api, "10000")
        seller, seller_id = await trader(api, "1000")
        await grant_shares(services, seller_id, sym, "10")
        holder, holder_id = await trader(api, "1000")
        await grant_shares(services, holder_id, sym, "5")
        taker, taker_id = await trader(api, "5000")
        bidder, bidder_id = await trader(api, "5000")
        users = [buyer_id, seller_id, holder_id, taker_id, bidder_id]

        # The bracket: buy 10 at 100, take-profit 104, stop 95; 3 fill before the fault.
        entry = await bracket(
            api, buyer, sym, takeProfit={"price": "104.00"}, stopLoss={"stopPrice": "95.00"}
        )
        tp_id, sl_id = (leg["id"] for leg in entry["legs"])
        await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="3", price="100.00", timeInForce="GTC",
        )  # fmt: skip
        await wait_for(
            api, buyer, entry["id"],
            lambda o: o["filledQuantity"] == "3"
            and [leg["quantity"] for leg in o["legs"]] == ["3", "3"],
            "the entry filled 3, its exits active for 3",
        )  # fmt: skip
        # The OCO: sell 5, take-profit 108, stop 97.
        result = await place(
            api, holder, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="5",
            timeInForce="GTC", orderClass="OCO", takeProfit={"price": "108.00"},
            stopLoss={"stopPrice": "97.00"},
        )  # fmt: skip
        assert result["errors"] == [], result
        oco = result["order"]
        [oco_stop] = oco["legs"]
        await wait_for(api, holder, oco["id"], lambda o: o["status"] == "PENDING", "the OCO")
        await quiescent(services, users)

        await _restart_redis_empty(p, api, shard)

        # Nothing changed for the users: the same orders, open, the same quantities.
        again = await get_order(api, buyer, entry["id"])
        assert (again["status"], again["filledQuantity"]) == ("PARTIALLY_FILLED", "3")
        assert [(leg["status"], leg["quantity"]) for leg in again["legs"]] == [
            ("PENDING", "3"),
            ("PENDING", "3"),
        ]
        assert await shares(services, buyer_id, sym) == (D(3), D(3))  # held once, for both

        # The take-profit fills: its stop is cancelled (OCO), and the entry's 7 with it.
        await placed(
            api, taker, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="3", price="105.00", timeInForce="IOC",
        )  # fmt: skip
        done = await wait_for(
            api, buyer, entry["id"],
            lambda o: o["status"] in FINAL and {leg["status"] for leg in o["legs"]} <= FINAL,
            "the bracket over",
        )  # fmt: skip
        assert (done["status"], done["cancelReason"]) == ("CANCELLED", "OCO")
        tp, sl = done["legs"]
        assert (tp["id"], tp["status"], tp["filledQuantity"]) == (tp_id, "EXECUTED", "3")
        assert (sl["id"], sl["status"], sl["cancelReason"]) == (sl_id, "CANCELLED", "OCO")
        assert await shares(services, buyer_id, sym) == (D(0), D(0))  # sold once, nothing held

        # The OCO's stop triggers on a trade at 96.50, sells its 5; the take-profit goes.
        await placed(
            api, bidder, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="6", price="96.50", timeInForce="GTC",
        )  # fmt: skip
        await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="1", price="96.50", timeInForce="GTC",
        )  # fmt: skip
        over = await wait_for(
            api, holder, oco["id"],
            lambda o: o["status"] in FINAL and o["legs"][0]["status"] in FINAL,
            "the OCO over",
        )  # fmt: skip
        assert (over["status"], over["cancelReason"]) == ("CANCELLED", "OCO")
        [stop] = over["legs"]
        assert (stop["id"], stop["status"], stop["filledQuantity"]) == (
            oco_stop["id"],
            "EXECUTED",
            "5",
        )
        assert await shares(services, holder_id, sym) == (D(0), D(0))

        await quiescent(services, users)
        await assert_consistent(services, users, [entry["id"], oco["id"]], sym)


async def test_the_reconciler_gives_the_engine_postgresql_remaining_quantity(
    platform: Platform,
) -> None:
    """An order of 10 rests; PostgreSQL's row is changed to 6 behind the engine's back (a
    drift: the engine still offers 10). Within a few reconciler rounds the engine offers 6: a
    seller of 10 fills 6 against it and the order ends EXECUTED with 6, never more than
    PostgreSQL holds; the repair is counted."""
    p = platform
    services = p.services
    sym = symbol("LR")
    await list_asset(services, sym, "100.00")
    shard = shard_for(sym, p.stack.shards)
    async with p.stack.client() as api:
        buyer, buyer_id = await trader(api, "5000")
        seller, seller_id = await trader(api)
        await grant_shares(services, seller_id, sym, "10")
        order = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="10", price="99.00", timeInForce="GTC",
        )  # fmt: skip
        await quiescent(services, [buyer_id])
        _, repairs = await _epoch(p, shard)
        async with services.sessionmaker() as s, s.begin():
            await s.execute(
                update(Order).where(Order.id == uuid.UUID(order["id"])).values(quantity=D(6))
            )

        # What a seller would meet: the engine's book offers 6 (the repair count alone could
        # be moved by another order's repair on this module's shared platform).
        async def bids() -> list[tuple[D, D]]:
            book = await services.exchange.book(sym) or {}
            return [(D(p), D(q)) for p, q, _ in book.get("bids") or []]

        await eventually(
            bids,
            lambda b: b == [(D("99.00"), D(6))],
            timeout=30,
            what="the reconciler gave the engine PostgreSQL's remaining quantity",
        )
        repaired = (await _epoch(p, shard))[1]
        assert repaired > repairs
        sell = await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="10", price="99.00", timeInForce="GTC",
        )  # fmt: skip
        done = await wait_for(
            api, buyer, order["id"], lambda o: o["status"] in FINAL, "the buy executed"
        )
        assert (done["status"], done["filledQuantity"], done["quantity"]) == ("EXECUTED", "6", "6")
        rest = await wait_for(
            api, seller, sell["id"], lambda o: o["filledQuantity"] == "6", "the sell filled 6"
        )
        assert rest["status"] == "PARTIALLY_FILLED"
        await cancel_open_orders(api, services, {seller_id: seller})
        await quiescent(services, [buyer_id, seller_id])
        await assert_consistent(services, [buyer_id, seller_id], [order["id"], sell["id"]], sym)
        # Nothing else drifts: the count stays where the one repair put it.
        await asyncio.sleep(3)
        assert (await _epoch(p, shard))[1] == repaired
