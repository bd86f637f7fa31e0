"""Commands in flight at a stock split, on the real platform (shard, settlement processes,
PostgreSQL, Redis): an order or a replace committed before a 2-for-1 whose command reaches the
book after the SPLIT, and placements racing the split. The engine and PostgreSQL must agree,
in post-split terms, with holds to the cent.

The "late" command is the API's own send, held back (``Outbox.send_now``): the row is marked
sent first, so the split's transaction does not rewrite it and the outbox relay never sends
a second copy; the only command the engine sees is the one planned before the split,
stamped with the old split count.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from bourse.clock import utcnow
from bourse.keys import shard_for
from bourse.money import round_cash
from matching.wire import decode_command
from models.assets import Asset
from models.errors import DomainError
from models.ledger import AccountKind, Hold
from models.orders.events import OrderEventRow
from models.orders.outbox import OutboxEntry
from models.orders.rules import PlaceOrderRequest, ReplaceOrderRequest
from models.orders.tables import Order, OrderReplacement, OrderSubType, Side, TimeInForce
from models.services import Services
from tests.documents.test_split_orders import book_when, levels, split
from tests.orders.conftest import symbol
from tests.orders.helpers import grant_shares, list_asset, placed, trader, wait_order
from tests.support.polling import eventually
from tests.support.stack import Stack

D = Decimal
pytestmark = pytest.mark.timeout(300)


class HeldSends:
    """The API's sends after commit, held until ``release`` (each row marked sent first)."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self.services = services
        self.gate = asyncio.Event()
        self.waiting = 0
        self.arrived = asyncio.Event()
        send = services.orders.outbox.send_now

        async def held(row: OutboxEntry) -> None:
            async with services.sessionmaker.begin() as s:
                await s.execute(
                    update(OutboxEntry).where(OutboxEntry.id == row.id).values(sent_at=utcnow())
                )
            self.waiting += 1
            self.arrived.set()
            await self.gate.wait()
            await send(row)

        monkeypatch.setattr(services.orders.outbox, "send_now", held)

    def release(self) -> None:
        self.gate.set()

    async def count(self) -> int:
        return self.waiting


async def engine_has_split(services: Services, asset: str, count: int = 1) -> None:
    async def reopened() -> bool:
        async with services.sessionmaker() as s:
            a = await s.get(Asset, asset)
            return a is not None and not a.splitting and a.split_seq == count

    await eventually(reopened, lambda ok: ok, timeout=30, what="the engine applied the split")


async def order_row(services: Services, order_id: uuid.UUID) -> Order:
    async with services.sessionmaker() as s:
        o = await s.get(Order, order_id)
        assert o is not None
        return o


async def hold_amount(services: Services, order: Order) -> D:
    async with services.sessionmaker() as s:
        h = await s.get(Hold, order.hold_id)
        assert h is not None
        return h.amount


async def events_of(services: Services, order_id: uuid.UUID) -> list[str]:
    async with services.sessionmaker() as s:
        rows = await s.scalars(
            select(OrderEventRow.event)
            .where(OrderEventRow.order_id == order_id)
            .order_by(OrderEventRow.id)
        )
        return list(rows)


def buy(asset: str, quantity: str, price: str) -> PlaceOrderRequest:
    return PlaceOrderRequest(
        asset, Side.BUY, OrderSubType.LIMIT, TimeInForce.GTC, quantity=quantity, price=price
    )


async def test_a_new_order_committed_before_a_split_and_sent_after_it(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = stack_services
    asset = symbol("SLN")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        _, buyer_id = await trader(api, "5000")
        _, seller_id = await trader(api)
    await grant_shares(services, seller_id, asset, "10")
    held = HeldSends(services, monkeypatch)
    placing = asyncio.create_task(services.orders.place(buyer_id, buy(asset, "10", "80.01")))
    stop_req = PlaceOrderRequest(
        asset, Side.SELL, OrderSubType.STOP_LOSS, TimeInForce.GTC, quantity="10",
        stop_price="90.01",
    )  # fmt: skip
    stopping = asyncio.create_task(services.orders.place(seller_id, stop_req))
    await eventually(held.count, lambda n: n == 2, timeout=15, what="both sends held")
    # Both committed (in PostgreSQL, stamped with split count 0), neither in the engine yet.
    await split(services, asset, 2, 1)
    await engine_has_split(services, asset)
    held.release()
    order, stop = await placing, await stopping

    # The engine: 20 at 40.00 (80.01 / 2 = 40.005, a buy's limit rounds down), as if the
    # order had rested through the split.
    after = await book_when(
        services, asset, lambda b: levels(b, "bids") == [(D(40), D(20))], "the late buy"
    )
    # PostgreSQL agrees: the split's transaction rewrote the committed row, and the hold is
    # exactly what 20 x 40.00 needs (it was 10 x 80.01 = 800.10).
    row = await order_row(services, order.id)
    assert (row.quantity, row.price, row.status.value) == (D(20), D(40), "PENDING")
    assert await hold_amount(services, row) == D("800.00")
    async with services.sessionmaker() as s:
        cash = await services.ledger.balances(s, buyer_id, AccountKind.CASH)
        assert [b.held for b in cash if b.asset == "USD"] == [D("800.00")]

    # The stop priced 90.01 before the split is 45.00 after it (a sell stop rounds down): it
    # waits under the 50.00 reference instead of triggering at once.
    marker = await services.orders.place(buyer_id, buy(asset, "1", "39.00"))
    await book_when(services, asset, lambda b: (D(39), D(1)) in levels(b, "bids"), "a later order")
    await eventually(
        lambda: events_of(services, marker.id), lambda e: "ACCEPTED" in e, timeout=15,
        what="the later order settled",
    )  # fmt: skip
    assert "TRIGGERED" not in await events_of(services, stop.id)
    srow = await order_row(services, stop.id)
    assert (srow.quantity, srow.stop_price, srow.triggered_at) == (D(20), D(45), None)
    assert srow.status.value == "PENDING"
    async with services.sessionmaker() as s:
        shares = await services.ledger.balances(s, seller_id, AccountKind.SHARES)
        assert [(b.total, b.held) for b in shares if b.asset == asset] == [(D(20), D(20))]
        assert await services.ledger.check(s) == []

    # Replay: the shard restarted from its snapshot and journal (the late stamped command
    # among them) publishes the same book.
    shard = f"shard-{shard_for(asset, stack.settings.matching_shards)}"
    await stack.kill(shard)
    await stack.start(shard)
    restarted = await book_when(
        services, asset, lambda b: b.get("input_id") is not None, "the restarted shard's book"
    )
    assert levels(restarted, "bids") == [(D(40), D(20)), (D(39), D(1))]
    assert levels(after, "bids")[0] == levels(restarted, "bids")[0]


async def test_a_replace_committed_before_a_split_and_sent_after_it(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = stack_services
    asset = symbol("SLR")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        _, buyer_id = await trader(api, "5000")
    order = await services.orders.place(buyer_id, buy(asset, "10", "90.00"))
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(90), D(10))], "the bid")
    held = HeldSends(services, monkeypatch)
    replacing = asyncio.create_task(
        services.orders.replace(
            buyer_id, str(order.id), ReplaceOrderRequest(quantity="12", price="85.01")
        )
    )
    await asyncio.wait_for(held.arrived.wait(), 15)
    row = await order_row(services, order.id)
    assert await hold_amount(services, row) == D("1020.12")  # grown for 12 x 85.01
    await split(services, asset, 2, 1)
    await engine_has_split(services, asset)
    # Meanwhile the book has the split's 20 at 45.00, the replace not applied yet.
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(45), D(20))], "split")
    held.release()
    await replacing

    # 12 at 85.01 asked before the split: 24 at 42.50 (a buy's limit rounds down).
    await book_when(
        services, asset, lambda b: levels(b, "bids") == [(D("42.50"), D(24))], "the replace"
    )

    async def replaced() -> Order:
        return await order_row(services, order.id)

    row = await eventually(
        replaced, lambda o: o.quantity == D(24), timeout=15, what="REPLACED settled"
    )
    assert (row.quantity, row.price) == (D(24), D("42.50"))
    assert await hold_amount(services, row) == D("1020.00")  # 24 x 42.50, to the cent
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []


async def test_a_placement_between_reading_the_asset_and_writing_its_order_holds_the_split(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made certain: a placement has read the asset (not splitting) and is paused
    before its write (in its reference price read) when the split starts. The split waits
    for it (the asset row's FOR KEY SHARE against the split's FOR UPDATE), then rewrites it;
    without the lock the split would commit first and the order would stand in PostgreSQL
    at 10 x 80.01 while the engine caught its command up to 20 x 40.00."""
    services = stack_services
    asset = symbol("SLP")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        _, buyer_id = await trader(api, "5000")
    reference = services.orders._reference_price
    paused, go = asyncio.Event(), asyncio.Event()

    async def slow_reference(a: Asset) -> D:
        paused.set()
        await go.wait()
        return await reference(a)

    monkeypatch.setattr(services.orders, "_reference_price", slow_reference)
    placing = asyncio.create_task(services.orders.place(buyer_id, buy(asset, "10", "80.01")))
    await asyncio.wait_for(paused.wait(), 15)
    splitting = asyncio.create_task(split(services, asset, 2, 1))
    await asyncio.sleep(1.0)
    assert not splitting.done(), "the split did not wait for the placement in flight"
    go.set()
    order = await placing
    await splitting
    await engine_has_split(services, asset)
    row = await order_row(services, order.id)
    assert (row.quantity, row.price) == (D(20), D(40))
    assert await hold_amount(services, row) == D("800.00")
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(40), D(20))], "book")


async def test_a_replace_between_reading_the_asset_and_writing_holds_the_split(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for replaceOrder: the split waits for the replace in flight (it holds the
    asset row, and already the hold's account and the order, which the split locks too), then
    rewrites its pending terms; the engine catches the REPLACE up; both end at 24 x 42.50.
    (The account and order locks alone serialise these two: this one passes without the
    asset lock; the placement's test above does not.)"""
    services = stack_services
    asset = symbol("SLQ")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        _, buyer_id = await trader(api, "5000")
    order = await services.orders.place(buyer_id, buy(asset, "10", "90.00"))
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(90), D(10))], "the bid")
    reference = services.orders._reference_price
    paused, go = asyncio.Event(), asyncio.Event()

    async def slow_reference(a: Asset) -> D:
        paused.set()
        await go.wait()
        return await reference(a)

    monkeypatch.setattr(services.orders, "_reference_price", slow_reference)
    asked = ReplaceOrderRequest(quantity="12", price="85.01")
    replacing = asyncio.create_task(services.orders.replace(buyer_id, str(order.id), asked))
    await asyncio.wait_for(paused.wait(), 15)
    splitting = asyncio.create_task(split(services, asset, 2, 1))
    await asyncio.sleep(1.0)
    assert not splitting.done(), "the split did not wait for the replace in flight"
    go.set()
    await replacing
    await splitting
    await book_when(
        services, asset, lambda b: levels(b, "bids") == [(D("42.50"), D(24))], "the replace"
    )

    async def settled() -> Order:
        return await order_row(services, order.id)

    row = await eventually(settled, lambda o: o.quantity == D(24), timeout=15, what="REPLACED")
    assert (row.quantity, row.price) == (D(24), D("42.50"))
    assert await hold_amount(services, row) == D("1020.00")


async def test_placements_racing_a_split_end_in_post_split_terms(stack: Stack) -> None:
    """Many placements and the split at once (a pool wide enough for them to overlap): each
    order either committed before the split read the open orders (rewritten: 20 at 40.00,
    stamped 0, caught up in the engine) or saw ``splitting`` and was refused; none committed
    pre-split terms behind the split's back."""
    asset = symbol("SLX")
    async with stack.services(pool_size=16) as services:
        await list_asset(services, asset, "100.00", fractionable=False)
        async with stack.client() as api:
            buyers = [(await trader(api, "1000"))[1] for _ in range(24)]

        async def one(user: uuid.UUID) -> uuid.UUID | str:
            try:
                return (await services.orders.place(user, buy(asset, "10", "80.01"))).id
            except DomainError as exc:
                return exc.problems[0].code.value

        async def split_soon() -> None:
            await asyncio.sleep(0.01)
            await split(services, asset, 2, 1)

        tasks: list[Awaitable[Any]] = [one(u) for u in buyers[:12]]
        tasks += [split_soon()]
        tasks += [one(u) for u in buyers[12:]]
        results = await asyncio.gather(*tasks)
        placed = [r for r in results if isinstance(r, uuid.UUID)]
        refused = Counter(r for r in results if isinstance(r, str))
        # Refused while the split reaches the engine; once it has, 80.01 is far from 50.00.
        assert set(refused) <= {"ASSET_NOT_TRADABLE", "INVALID_PRICE"}, refused
        assert placed, "no placement committed before the split: the race proved nothing"
        await engine_has_split(services, asset)

        async with services.sessionmaker() as s:
            rows = (await s.scalars(select(Order).where(Order.id.in_(placed)))).all()
            stamps = {
                r.order_id: decode_command(r.command).get("split_seq")
                for r in await s.scalars(
                    select(OutboxEntry).where(OutboxEntry.order_id.in_(placed))
                )
            }
            holds = {
                h.id: h.amount
                for h in await s.scalars(select(Hold).where(Hold.reference_id.in_(placed)))
            }
        for o in rows:
            assert (o.quantity, o.price, o.status.value) == (D(20), D(40), "PENDING"), o.id
            assert o.hold_id is not None
            assert holds[o.hold_id] == round_cash(D(20) * D(40), "USD", ROUND_CEILING)
            assert stamps[o.id] in (0, 1)  # 0: sent as planned; 1: rewritten unsent
        want = [(D(40), D(20 * len(rows)))]
        await book_when(services, asset, lambda b: levels(b, "bids") == want, "every order")
        async with services.sessionmaker() as s:
            assert await services.ledger.check(s) == []


async def test_an_oco_buys_shared_hold_is_trimmed_by_the_split(
    stack: Stack, stack_services: Services
) -> None:
    """An OCO buy holds once for both legs, at the dearer limit (10 x 110.01 = 1,100.10):
    after a 2-for-1 that is 20 x 55.00 = 1,100.00, what placing it fresh would hold."""
    services = stack_services
    asset = symbol("SLO")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        token, buyer_id = await trader(api, "5000")
        oco = await placed(api, token, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                           quantity="10", price="90.00", timeInForce="GTC", orderClass="OCO",
                           takeProfit={"price": "90.00"},
                           stopLoss={"stopPrice": "110.00", "price": "110.01"})  # fmt: skip
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(90), D(10))], "the bid")
    row = await order_row(services, uuid.UUID(oco["id"]))
    assert await hold_amount(services, row) == D("1100.10")
    await split(services, asset, 2, 1)
    row = await order_row(services, row.id)
    assert (row.quantity, row.price) == (D(20), D(45))
    assert await hold_amount(services, row) == D("1100.00")
    await engine_has_split(services, asset)
    await book_when(services, asset, lambda b: levels(b, "bids") == [(D(45), D(20))], "split")
    async with services.sessionmaker() as s:
        cash = await services.ledger.balances(s, buyer_id, AccountKind.CASH)
        assert [b.held for b in cash if b.asset == "USD"] == [D("1100.00")]
        assert await services.ledger.check(s) == []


async def test_late_replaces_of_partly_filled_orders_at_a_3_for_2_hold_what_they_need(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buy and a sell, each 1 of 4 filled, replaced (4 in total, a new price) before a
    3-for-2 whose REPLACE reaches the engine after the SPLIT. Had the replaces arrived before
    the split, each order would be filled 1 -> 1 and 3 more -> 4.5 -> 4: 5 in total, 4 left.
    The late REPLACE ends the same in the engine and in PostgreSQL (rounded once it would be
    4 x 1.5 = 6, 5 left: one share more than the seller holds and than the buy's hold covers),
    and the holds are what placing the replaced orders fresh would hold, trimmed, not grown:
    - buy: 4 x 30.10 / 1.5 -> 20.06 (down): 4 x 20.06 = 80.24 (it held 3 x 30.10 = 90.30, of
      which the replace added 0.30; now 0.24 beyond the live order's 4 x 20.00 = 80.00);
    - sell: 4 shares (it held 3), at 30.40 / 1.5 -> 20.27 (up)."""
    services = stack_services
    asset = symbol("SLW")
    await list_asset(services, asset, "30.00", fractionable=False)
    async with stack.client() as api:
        buyer, buyer_id = await trader(api, "5000")
        other_buyer, _ = await trader(api, "5000")
        seller, seller_id = await trader(api)
        other_seller, other_seller_id = await trader(api)
        await grant_shares(services, seller_id, asset, "4")
        await grant_shares(services, other_seller_id, asset, "1")
        bid = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                           quantity="4", price="30.00", timeInForce="GTC")  # fmt: skip
        await placed(api, other_seller, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                     quantity="1", price="30.00", timeInForce="GTC")  # fmt: skip
        ask = await placed(api, seller, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                           quantity="4", price="30.20", timeInForce="GTC")  # fmt: skip
        await placed(api, other_buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                     quantity="1", price="30.20", timeInForce="GTC")  # fmt: skip
        for token, oid in ((buyer, bid["id"]), (seller, ask["id"])):
            await wait_order(api, token, oid, {"PARTIALLY_FILLED"}, timeout=30)
    partly = ([(D(30), D(3))], [(D("30.20"), D(3))])
    await book_when(
        services, asset, lambda b: (levels(b, "bids"), levels(b, "asks")) == partly, "partly"
    )
    held = HeldSends(services, monkeypatch)
    bid_id, ask_id = uuid.UUID(bid["id"]), uuid.UUID(ask["id"])
    replacing = [
        asyncio.create_task(services.orders.replace(user, str(oid), ReplaceOrderRequest(
            quantity="4", price=price)))
        for user, oid, price in ((buyer_id, bid_id, "30.10"), (seller_id, ask_id, "30.40"))
    ]  # fmt: skip
    await eventually(held.count, lambda n: n == 2, timeout=15, what="both replaces held")
    assert await hold_amount(services, await order_row(services, bid_id)) == D("90.30")
    await split(services, asset, 3, 2)
    async with services.sessionmaker() as s:
        rows = {
            r.order_id: (r.quantity, r.price, r.hold_added)
            for r in await s.scalars(
                select(OrderReplacement).where(OrderReplacement.order_id.in_([bid_id, ask_id]))
            )
        }
    assert rows == {
        bid_id: (D(5), D("20.06"), D("0.24")),
        ask_id: (D(5), D("20.27"), D(0)),
    }
    assert await hold_amount(services, await order_row(services, bid_id)) == D("80.24")
    assert await hold_amount(services, await order_row(services, ask_id)) == D(4)
    await engine_has_split(services, asset)
    held.release()
    await asyncio.gather(*replacing)

    await book_when(
        services, asset,
        lambda b: levels(b, "bids") == [(D("20.06"), D(4))]
        and levels(b, "asks") == [(D("20.27"), D(4))],
        "the late replaces",
    )  # fmt: skip

    async def both() -> list[Order]:
        return [await order_row(services, bid_id), await order_row(services, ask_id)]

    b, a = await eventually(
        both, lambda os: all(o.quantity == D(5) and o.price != D(20) and o.price != D("20.14")
                             for o in os), timeout=15, what="REPLACED settled",
    )  # fmt: skip
    assert (b.quantity, b.filled_quantity, b.price) == (D(5), D(1), D("20.06"))
    assert (a.quantity, a.filled_quantity, a.price) == (D(5), D(1), D("20.27"))
    assert await hold_amount(services, b) == D("80.24")
    assert await hold_amount(services, a) == D(4)
    async with services.sessionmaker() as s:
        shares = await services.ledger.balances(s, seller_id, AccountKind.SHARES)
        # 3 -> 4.5: 4 kept (0.5 paid in lieu), all 4 held by the sell's 4 remaining.
        assert [(x.total, x.held) for x in shares if x.asset == asset] == [(D(4), D(4))]
        assert await services.ledger.check(s) == []


async def test_late_replaces_two_splits_late_round_at_each_split(
    stack: Stack, stack_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same two partly filled orders (1 of 4 filled, replaced to 4 in total at a new
    price), but two 3-for-2 splits commit and reach the engine before the REPLACE. Had the
    replaces arrived before both, each order would go 1 + 3 -> 1 + 4 = 5 at the first split
    and 1 + 4 -> 1 + 6 = 7 at the second: 6 left. The engine rounds the late REPLACE at each
    split it missed (rounded once it would be 4 x 2.25 = 9, 8 left: two shares more than the
    seller holds and than the buy's hold covers) and so agrees with PostgreSQL, which rewrote
    the pending replaces at each split; the holds are what placing the replaced orders fresh
    would hold:
    - buy: 30.10 -> 20.06 -> 13.37 (down): 6 x 13.37 = 80.22 (the live order's 6 x 13.33 =
      79.98, so the replace keeps 0.24 beyond it);
    - sell: 6 shares (3 -> 4.5 -> 4 kept, 0.5 in lieu -> 6), at 30.40 -> 20.27 -> 13.52 (up)."""
    services = stack_services
    asset = symbol("SLX")
    await list_asset(services, asset, "30.00", fractionable=False)
    async with stack.client() as api:
        buyer, buyer_id = await trader(api, "5000")
        other_buyer, _ = await trader(api, "5000")
        seller, seller_id = await trader(api)
        other_seller, other_seller_id = await trader(api)
        await grant_shares(services, seller_id, asset, "4")
        await grant_shares(services, other_seller_id, asset, "1")
        bid = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                           quantity="4", price="30.00", timeInForce="GTC")  # fmt: skip
        await placed(api, other_seller, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                     quantity="1", price="30.00", timeInForce="GTC")  # fmt: skip
        ask = await placed(api, seller, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                           quantity="4", price="30.20", timeInForce="GTC")  # fmt: skip
        await placed(api, other_buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                     quantity="1", price="30.20", timeInForce="GTC")  # fmt: skip
        for token, oid in ((buyer, bid["id"]), (seller, ask["id"])):
            await wait_order(api, token, oid, {"PARTIALLY_FILLED"}, timeout=30)
    partly = ([(D(30), D(3))], [(D("30.20"), D(3))])
    await book_when(
        services, asset, lambda b: (levels(b, "bids"), levels(b, "asks")) == partly, "partly"
    )
    held = HeldSends(services, monkeypatch)
    bid_id, ask_id = uuid.UUID(bid["id"]), uuid.UUID(ask["id"])
    replacing = [
        asyncio.create_task(services.orders.replace(user, str(oid), ReplaceOrderRequest(
            quantity="4", price=price)))
        for user, oid, price in ((buyer_id, bid_id, "30.10"), (seller_id, ask_id, "30.40"))
    ]  # fmt: skip
    await eventually(held.count, lambda n: n == 2, timeout=15, what="both replaces held")
    await split(services, asset, 3, 2)
    await split(services, asset, 3, 2)
    async with services.sessionmaker() as s:
        rows = {
            r.order_id: (r.quantity, r.price, r.hold_added)
            for r in await s.scalars(
                select(OrderReplacement).where(OrderReplacement.order_id.in_([bid_id, ask_id]))
            )
        }
    assert rows == {
        bid_id: (D(7), D("13.37"), D("0.24")),
        ask_id: (D(7), D("13.52"), D(0)),
    }
    assert await hold_amount(services, await order_row(services, bid_id)) == D("80.22")
    assert await hold_amount(services, await order_row(services, ask_id)) == D(6)
    await engine_has_split(services, asset, count=2)
    held.release()
    await asyncio.gather(*replacing)

    await book_when(
        services, asset,
        lambda b: levels(b, "bids") == [(D("13.37"), D(6))]
        and levels(b, "asks") == [(D("13.52"), D(6))],
        "the late replaces",
    )  # fmt: skip

    async def both() -> list[Order]:
        return [await order_row(services, bid_id), await order_row(services, ask_id)]

    b, a = await eventually(
        both, lambda os: all(o.price in (D("13.37"), D("13.52")) for o in os), timeout=15,
        what="REPLACED settled",
    )  # fmt: skip
    assert (b.quantity, b.filled_quantity, b.price) == (D(7), D(1), D("13.37"))
    assert (a.quantity, a.filled_quantity, a.price) == (D(7), D(1), D("13.52"))
    assert await hold_amount(services, b) == D("80.22")
    assert await hold_amount(services, a) == D(6)
    async with services.sessionmaker() as s:
        shares = await services.ledger.balances(s, seller_id, AccountKind.SHARES)
        assert [(x.total, x.held) for x in shares if x.asset == asset] == [(D(6), D(6))]
        assert await services.ledger.check(s) == []
