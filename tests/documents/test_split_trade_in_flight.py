"""A trade in flight at a stock split, on the real platform (API, shard, settlement processes,
PostgreSQL, Redis): the engine trades, the settlement is stopped, the split commits, then the
trade settles. Each party must end exactly as if the trade had settled before the split: whole
shares, cash in lieu of the fraction at the split's price (funds row, lots, realized gain), the
ledger clean; the settlement's stream applied again (cursor lost) changes nothing.

Hand-computed figures (whole-share asset listed at 30.00; a 3-for-2 makes the reference, and
so cash in lieu's price, 20.00; every trade 3 shares at 30.00 = 90.00, settled after the split
as 4.5 shares at 20.00, 90.00 as traded):

- Pair A: the seller held 3 (cost 30.00), sells all 3; the buyer held none.
  At the split the seller's 3 became 4.5: 4 kept, 0.5 paid in lieu (10.00).
  Settled before the split, the buyer would have had 3 -> 4.5: 4 and 10.00; the seller nothing.
  So the buyer ends with 4 shares and 10.00 in lieu (its 0.5 sold: proceeds 10.00, cost
  90.00 x 0.5 / 4.5 = 10.00, gain 0; its lot 4 costing 80.00); the seller delivers the 4 it
  holds plus the 0.5 taken back from the clearing account, paying back the 10.00: 0 shares,
  cash 90.00, realized gains 60.00 in all (90.00 + 10.00 - 10.00 - 30.00 of cost).
- Pair B: the seller held 5 (cost 50.00), sells 3; the buyer held 1 (cost 10.00), buys 3.
  At the split: seller 7.5 -> 7 and 10.00; buyer 1.5 -> 1 and 10.00.
  Before the split: seller 2 -> 3 and buyer 4 -> 6, no fraction. So both take 0.5 back and pay
  back 10.00: the seller ends with 3 shares and 90.00, the buyer with 6 shares and
  5,000 - 90.00 = 4,910.00.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select

from bourse.keys import events_key, shard_for
from matching.wire import read_event
from models import debits
from models.compliance_tables import CaseDecision, CaseKind, CaseStatus, ComplianceCase
from models.corporate_actions import CorporateAction, CorporateActionEntry
from models.documents.statement import build_statement
from models.funds import FundTransaction, TransactionType
from models.ledger import AccountKind
from models.notifications.tables import Kind, Notification
from models.positions import Lot, Position, RealizedGain
from models.services import Services
from models.settlement import Settlement, SettlementCursor
from tests.documents.test_split_orders import book_when, split
from tests.funds.helpers import account, deposit, withdraw
from tests.orders.conftest import symbol
from tests.orders.helpers import grant_shares, list_asset, placed, trader, wait_order
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
pytestmark = pytest.mark.timeout(300)


async def trade(api: Api, services: Services, asset: str, seller: str, buyer: str) -> list[str]:
    """3 at 30.00 between them, traded in the engine (the book empty again)."""
    ask = await placed(api, seller, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                       quantity="3", price="30.00", timeInForce="GTC")  # fmt: skip
    await book_when(services, asset, lambda b: b.get("asks"), "the ask")
    bid = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                       quantity="3", price="30.00", timeInForce="GTC")  # fmt: skip
    await book_when(services, asset, lambda b: not b.get("asks") and not b.get("bids"), "the trade")
    return [ask["id"], bid["id"]]


async def holding(services: Services, user: uuid.UUID, asset: str) -> tuple[D, D]:
    """(cash, shares) in the ledger."""
    async with services.sessionmaker() as s:
        cash = await services.ledger.balances(s, user, AccountKind.CASH)
        shares = await services.ledger.balances(s, user, AccountKind.SHARES)
    return (
        sum((b.total for b in cash if b.asset == "USD"), D(0)),
        sum((b.total for b in shares if b.asset == asset), D(0)),
    )


async def lieu_rows(services: Services, user: uuid.UUID) -> list[D]:
    async with services.sessionmaker() as s:
        rows = await s.scalars(
            select(FundTransaction.amount)
            .where(
                FundTransaction.user_id == user,
                FundTransaction.type == TransactionType.CASH_IN_LIEU,
            )
            .order_by(FundTransaction.created_at)
        )
        return list(rows)


async def figures(services: Services, users: list[uuid.UUID], asset: str) -> list[object]:
    """Everything a replay must leave unchanged."""
    out: list[object] = []
    async with services.sessionmaker() as s:
        for u in users:
            out.append(await holding(services, u, asset))
            out.append(await lieu_rows(services, u))
            out.append(
                await s.scalar(
                    select(func.count()).select_from(Notification).where(Notification.user_id == u)
                )
            )
            out.append(
                list(
                    await s.scalars(
                        select(RealizedGain.gain)
                        .where(RealizedGain.user_id == u)
                        .order_by(RealizedGain.gain)
                    )
                )
            )
    return out


async def test_a_3_for_2_trade_in_flight_settles_its_fractions_as_cash_in_lieu(
    stack: Stack, stack_services: Services
) -> None:
    services = stack_services
    asset = symbol("SPL")
    await list_asset(services, asset, "30.00", fractionable=False)
    shard = shard_for(asset, stack.settings.matching_shards)
    settlement = f"settlement-{shard}"
    async with stack.client() as api:
        seller_a, seller_a_id = await trader(api)
        buyer_a, buyer_a_id = await trader(api, "5000")
        seller_b, seller_b_id = await trader(api)
        buyer_b, buyer_b_id = await trader(api, "5000")
        await grant_shares(services, seller_a_id, asset, "3")
        await grant_shares(services, seller_b_id, asset, "5")
        await grant_shares(services, buyer_b_id, asset, "1")
        await stack.kill(settlement)
        try:
            orders_a = await trade(api, services, asset, seller_a, buyer_a)
            orders_b = await trade(api, services, asset, seller_b, buyer_b)
            await split(services, asset, 3, 2)
            # The split saw the holdings without the trades: 4 + 10.00, 7 + 10.00, 1 + 10.00.
            assert await holding(services, seller_a_id, asset) == (D("10.00"), D(4))
            assert await holding(services, seller_b_id, asset) == (D("10.00"), D(7))
            assert await holding(services, buyer_b_id, asset) == (D("5010.00"), D(1))
        finally:
            await stack.start(settlement)
        for token, order_id in zip(
            (seller_a, buyer_a, seller_b, buyer_b), orders_a + orders_b, strict=True
        ):
            done = await wait_order(api, token, order_id, {"EXECUTED"}, timeout=60)
            # 3 traded before the split are 4.5 after it, at 20.00 (90.00 as traded).
            assert (D(done["quantity"]), D(done["filledQuantity"])) == (D("4.5"), D("4.5"))

    users = [seller_a_id, buyer_a_id, seller_b_id, buyer_b_id]

    async def settled() -> list[tuple[D, D]]:
        return [await holding(services, u, asset) for u in users]

    want = [
        (D("90.00"), D(0)),  # seller A: 90 + 10 in lieu - 10 paid back
        (D("4920.00"), D(4)),  # buyer A: 5,000 - 90 + 10 in lieu of 0.5
        (D("90.00"), D(3)),  # seller B: 2 x 1.5
        (D("4910.00"), D(6)),  # buyer B: 4 x 1.5; 5,000 - 90 (+10 - 10)
    ]
    assert await eventually(settled, lambda h: h == want, timeout=30, what="settled") == want
    assert await lieu_rows(services, seller_a_id) == [D("10.00"), D("-10.00")]
    assert await lieu_rows(services, buyer_a_id) == [D("10.00")]
    assert await lieu_rows(services, seller_b_id) == [D("10.00"), D("-10.00")]
    assert await lieu_rows(services, buyer_b_id) == [D("10.00"), D("-10.00")]

    async with services.sessionmaker() as s:
        # Buyer A: its 0.5 sold FIFO at 20.00 (cost 10.00, gain 0), its lot 4 costing 80.00.
        position = await s.get(Position, (buyer_a_id, asset))
        assert position is not None
        assert (position.quantity, position.cost_basis) == (D(4), D("80.00"))
        (lot,) = await s.scalars(select(Lot).where(Lot.user_id == buyer_a_id))
        assert (lot.remaining_quantity, lot.remaining_cost) == (D(4), D("80.00"))
        (gain,) = await s.scalars(select(RealizedGain).where(RealizedGain.user_id == buyer_a_id))
        assert (gain.quantity, gain.proceeds, gain.cost_basis) == (D("0.5"), D("10.00"), D("10.00"))
        # Seller A: 90 + 10 proceeds for 3 shares that cost 30 (+ 10 for the 0.5 taken back).
        gains = (
            await s.scalars(select(RealizedGain).where(RealizedGain.user_id == seller_a_id))
        ).all()
        assert sum((g.gain for g in gains), D(0)) == D("60.00")
        assert sum((g.quantity for g in gains), D(0)) == D(5)  # 0.5 in lieu, then 4.5 sold
        position = await s.get(Position, (seller_a_id, asset))
        assert position is not None
        assert position.quantity == 0
        # Buyer B: 6 shares costing 10.00 (its first share, in post-split shares: 1 after the
        # 0.5 sold at the split for 10.00 - its cost 6.67), + 90.00 + 10.00 for the 0.5 back.
        position = await s.get(Position, (buyer_b_id, asset))
        assert position is not None
        assert position.quantity == D(6)
        position = await s.get(Position, (seller_b_id, asset))
        assert position is not None
        assert position.quantity == D(3)

        # The split's entries read as if the trades had settled before it.
        action = await s.scalar(select(CorporateAction).where(CorporateAction.asset_id == asset))
        assert action is not None
        assert action.split_price == D("20.00")
        entries = {
            e.user_id: (e.quantity_before, e.quantity_after, e.cash, e.in_lieu_quantity)
            for e in await s.scalars(
                select(CorporateActionEntry).where(CorporateActionEntry.action_id == action.id)
            )
        }
        assert entries == {
            seller_a_id: (D(0), D(0), D(0), D(0)),
            buyer_a_id: (D(3), D(4), D("10.00"), D("0.5")),
            seller_b_id: (D(2), D(3), D(0), D(0)),
            buyer_b_id: (D(4), D(6), D(0), D(0)),
        }
        assert action.total_cash == D("10.00")
        assert action.holders == 4
        # Each party was told of its trade's fraction (beside the split's own notices).
        told = await s.scalars(
            select(Notification.user_id).where(
                Notification.kind == Kind.CORPORATE_ACTION,
                Notification.user_id.in_(users),
                Notification.body.contains("settled after it"),
            )
        )
        assert sorted(map(str, told)) == sorted(map(str, users))
        assert await services.ledger.check(s) == []

    # Replay: the shard's whole stream applied again with its cursor gone pays nothing twice.
    before = await figures(services, users, asset)
    stream = events_key(stack.prefix, shard)
    await stack.kill(settlement)
    try:
        async with services.sessionmaker.begin() as s:
            await s.execute(delete(SettlementCursor).where(SettlementCursor.stream == stream))
        entries_ = [
            (stream, entry_id.decode(), read_event(fields[b"event"]))
            for entry_id, fields in await services.redis.xrange(stream)
        ]
        async with services.sessionmaker() as s, s.begin():
            replayed = await Settlement(services.ledger, services.on_fills).apply(s, entries_)
        assert replayed.notifications == []
    finally:
        await stack.start(settlement)
    assert await figures(services, users, asset) == before
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []


async def test_a_2_for_1_trade_in_flight_leaves_no_fraction(
    stack: Stack, stack_services: Services
) -> None:
    """2-for-1: the seller held 5 (cost 50.00) and sells 3, the buyer held 1 (cost 10.00) and
    buys 3, at 30.00, settled after the split as 6 at 15.00. As if before the split: seller
    2 -> 4, buyer 4 -> 8, no fraction, so no cash in lieu either way; the split's entries say
    so, and nobody is told of a fraction."""
    services = stack_services
    asset = symbol("SPT")
    await list_asset(services, asset, "30.00", fractionable=False)
    settlement = f"settlement-{shard_for(asset, stack.settings.matching_shards)}"
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        buyer, buyer_id = await trader(api, "5000")
        await grant_shares(services, seller_id, asset, "5")
        await grant_shares(services, buyer_id, asset, "1")
        await stack.kill(settlement)
        try:
            orders = await trade(api, services, asset, seller, buyer)
            await split(services, asset, 2, 1)
        finally:
            await stack.start(settlement)
        for token, order_id in zip((seller, buyer), orders, strict=True):
            done = await wait_order(api, token, order_id, {"EXECUTED"}, timeout=60)
            assert (D(done["quantity"]), D(done["filledQuantity"])) == (D(6), D(6))

    async def settled() -> list[tuple[D, D]]:
        return [await holding(services, u, asset) for u in (seller_id, buyer_id)]

    want = [(D("90.00"), D(4)), (D("4910.00"), D(8))]
    assert await eventually(settled, lambda h: h == want, timeout=30, what="settled") == want
    assert await lieu_rows(services, seller_id) == []
    assert await lieu_rows(services, buyer_id) == []
    async with services.sessionmaker() as s:
        position = await s.get(Position, (buyer_id, asset))
        assert position is not None
        assert (position.quantity, position.cost_basis) == (D(8), D("100.00"))
        action = await s.scalar(select(CorporateAction).where(CorporateAction.asset_id == asset))
        assert action is not None
        entries = {
            e.user_id: (e.quantity_before, e.quantity_after, e.cash)
            for e in await s.scalars(
                select(CorporateActionEntry).where(CorporateActionEntry.action_id == action.id)
            )
        }
        assert entries == {seller_id: (D(2), D(4), D(0)), buyer_id: (D(4), D(8), D(0))}
        told = await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.user_id.in_([seller_id, buyer_id]),
                Notification.body.contains("settled after it"),
            )
        )
        assert told == 0
        assert await services.ledger.check(s) == []


async def entries_of(services: Services, action_id: uuid.UUID) -> dict[uuid.UUID, tuple[D, ...]]:
    """Each holder's (before, kept, cash, fraction) of one split."""
    async with services.sessionmaker() as s:
        return {
            e.user_id: (e.quantity_before, e.quantity_after, e.cash, e.in_lieu_quantity)
            for e in await s.scalars(
                select(CorporateActionEntry).where(CorporateActionEntry.action_id == action_id)
            )
        }


async def test_a_trade_in_flight_at_two_splits_settles_as_if_before_both(
    stack: Stack, stack_services: Services
) -> None:
    """Two 3-for-2 splits of one asset both commit before a trade the engine made before them
    settles: the fractions are redone for each split, oldest first, as if the trade had settled
    before the first. The reference goes 30.00 -> 20.00 -> 13.33 (each split's cash in lieu
    price); 3 traded at 30.00 are 6.75 today, at 13.333... (90.00 as traded).

    - Pair A: the seller held 3, sells 3; the buyer held none. The splits saw: seller 3 -> 4.5
      (4 kept, 0.5 paid 10.00) -> 6; buyer nothing. As if before: seller nothing; buyer 3 ->
      4.5 (4, 10.00) -> 6. So the buyer ends with 6 shares and 5,000 - 90 + 10 = 4,920.00
      (its 0.5 of the first split is 0.75 today, sold at 13.33...: 10.00), the seller with 0
      shares and 90.00 (10.00 paid back, its 0.75 taken back). The latest split alone (what
      was settled before) would have the seller deliver 6.75 of its 6: below zero.
    - Pair B: the seller held 5, sells 3; the buyer held 1, buys 3. The splits saw: seller
      5 -> 7.5 (7, 10.00) -> 10.5 (10, 0.5 x 13.33 = 6.66); buyer 1 -> 1.5 (1, 10.00) -> 1.5
      (1, 6.66). As if before: seller 2 -> 3 -> 4.5 (4, 6.66); buyer 4 -> 6 -> 9. So the
      seller pays back the first split's 10.00 (keeps the second's 6.66): 4 shares, 96.66; the
      buyer pays back both (16.66): 9 shares, 5,000 - 90 = 4,910.00.
    """
    services = stack_services
    asset = symbol("SP2")
    await list_asset(services, asset, "30.00", fractionable=False)
    settlement = f"settlement-{shard_for(asset, stack.settings.matching_shards)}"
    async with stack.client() as api:
        seller_a, seller_a_id = await trader(api)
        buyer_a, buyer_a_id = await trader(api, "5000")
        seller_b, seller_b_id = await trader(api)
        buyer_b, buyer_b_id = await trader(api, "5000")
        await grant_shares(services, seller_a_id, asset, "3")
        await grant_shares(services, seller_b_id, asset, "5")
        await grant_shares(services, buyer_b_id, asset, "1")
        await stack.kill(settlement)
        try:
            orders = await trade(api, services, asset, seller_a, buyer_a)
            orders += await trade(api, services, asset, seller_b, buyer_b)
            await split(services, asset, 3, 2)
            await split(services, asset, 3, 2)
            # The splits saw the holdings without the trades.
            assert await holding(services, seller_a_id, asset) == (D("10.00"), D(6))
            assert await holding(services, seller_b_id, asset) == (D("16.66"), D(10))
            assert await holding(services, buyer_b_id, asset) == (D("5016.66"), D(1))
        finally:
            await stack.start(settlement)
        for token, order_id in zip((seller_a, buyer_a, seller_b, buyer_b), orders, strict=True):
            done = await wait_order(api, token, order_id, {"EXECUTED"}, timeout=60)
            assert (D(done["quantity"]), D(done["filledQuantity"])) == (D("6.75"), D("6.75"))

    users = [seller_a_id, buyer_a_id, seller_b_id, buyer_b_id]

    async def settled() -> list[tuple[D, D]]:
        return [await holding(services, u, asset) for u in users]

    want = [
        (D("90.00"), D(0)),
        (D("4920.00"), D(6)),
        (D("96.66"), D(4)),
        (D("4910.00"), D(9)),
    ]
    assert await eventually(settled, lambda h: h == want, timeout=30, what="settled") == want
    assert sorted(await lieu_rows(services, seller_a_id)) == [D("-10.00"), D("10.00")]
    assert await lieu_rows(services, buyer_a_id) == [D("10.00")]
    assert sorted(await lieu_rows(services, seller_b_id)) == [
        D("-10.00"), D("6.66"), D("10.00")
    ]  # fmt: skip
    assert sorted(await lieu_rows(services, buyer_b_id)) == [
        D("-10.00"), D("-6.66"), D("6.66"), D("10.00")
    ]  # fmt: skip

    async with services.sessionmaker() as s:
        first, second = await s.scalars(
            select(CorporateAction)
            .where(CorporateAction.asset_id == asset)
            .order_by(CorporateAction.applied_at)
        )
        assert (first.split_price, second.split_price) == (D("20.00"), D("13.33"))
        # Buyer A: 6.75 bought for 90.00, 0.75 sold in lieu for 10.00 (cost 10.00, gain 0).
        position = await s.get(Position, (buyer_a_id, asset))
        assert position is not None
        assert (position.quantity, position.cost_basis) == (D(6), D("80.00"))
        (gain,) = await s.scalars(select(RealizedGain).where(RealizedGain.user_id == buyer_a_id))
        assert (gain.quantity, gain.proceeds, gain.cost_basis) == (
            D("0.75"), D("10.00"), D("10.00")
        )  # fmt: skip
        # Seller A: 90 + 10 proceeds for 3 shares that cost 30 (+ 10 for the 0.75 taken back).
        gains = (
            await s.scalars(select(RealizedGain).where(RealizedGain.user_id == seller_a_id))
        ).all()
        assert sum((g.gain for g in gains), D(0)) == D("60.00")
        for user, quantity in ((seller_a_id, 0), (seller_b_id, 4), (buyer_b_id, 9)):
            position = await s.get(Position, (user, asset))
            assert position is not None
            assert position.quantity == D(quantity)
        assert await services.ledger.check(s) == []

    # Each split's entries read as that split would have recorded them, the trades settled
    # before the first (before: the holding the split saw, in its own pre-split shares).
    assert await entries_of(services, first.id) == {
        seller_a_id: (D(0), D(0), D(0), D(0)),
        buyer_a_id: (D(3), D(4), D("10.00"), D("0.5")),
        seller_b_id: (D(2), D(3), D(0), D(0)),
        buyer_b_id: (D(4), D(6), D(0), D(0)),
    }
    assert await entries_of(services, second.id) == {
        seller_a_id: (D(0), D(0), D(0), D(0)),
        buyer_a_id: (D(4), D(6), D(0), D(0)),
        seller_b_id: (D(3), D(4), D("6.66"), D("0.5")),
        buyer_b_id: (D(6), D(9), D(0), D(0)),
    }


async def owed(services: Services, user: uuid.UUID) -> D:
    async with services.sessionmaker() as s:
        return await debits.owed(s, user, "USD")


async def debit_case(services: Services, user: uuid.UUID) -> ComplianceCase | None:
    async with services.sessionmaker() as s:
        found: ComplianceCase | None = await s.scalar(
            select(ComplianceCase).where(
                ComplianceCase.user_id == user, ComplianceCase.kind == CaseKind.DEBIT_BALANCE
            )
        )
        return found


async def test_a_party_who_cannot_pay_back_owes_a_debit_repaid_by_its_next_deposit(
    stack: Stack, stack_services: Services
) -> None:
    """3-for-2; the seller held 5 and sells 3, the buyer held 1 with exactly 90.00 of cash and
    buys 3 at 30.00 (its hold 90.00). At the split the buyer's 1 became 1.5: 1 kept and 10.00
    paid in lieu, and its open buy (3 -> 4.5, floored to 4 at 20.00) holds 80.00: 20.00
    available, which it withdraws. Then the trade settles: 90.00 as traded, and the 10.00 in
    lieu paid back (as if before the split it would have held 4 -> 6, no fraction): 20.00
    more than its cash. The batch settles (never a poison batch): the buyer ends with 6 shares
    and 0.00 cash, owing 20.00 (its RECEIVABLE account, a DEBIT_BALANCE case that freezes
    withdrawals, a notification), the seller as if before the split (3 shares, 90.00), the
    ledger check clean. A deposit of 5.00 repays 5.00 (15.00 owed, the case open); one of
    50.00 repays the rest (35.00 cash), clears the case, and withdrawals work again."""
    services = stack_services
    asset = symbol("SPD")
    await list_asset(services, asset, "30.00", fractionable=False)
    settlement = f"settlement-{shard_for(asset, stack.settings.matching_shards)}"
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        buyer, buyer_id = await trader(api, "90.00")
        await grant_shares(services, seller_id, asset, "5")
        await grant_shares(services, buyer_id, asset, "1")
        await stack.kill(settlement)
        try:
            orders = await trade(api, services, asset, seller, buyer)
            await split(services, asset, 3, 2)
            cash = (await account(api, buyer))["cash"][0]
            assert (D(cash["total"]), D(cash["available"])) == (D("100.00"), D("20.00"))
            out = await withdraw(api, buyer, "20.00")
            assert out["errors"] == []

            # Paid out (what the worker's job does), so the 20.00 has left the platform.
            paid = await services.funds.complete_withdrawal(uuid.UUID(out["transaction"]["id"]))
            assert paid is not None
            assert str(paid.status) == "COMPLETED"
            assert await holding(services, buyer_id, asset) == (D("80.00"), D(1))
        finally:
            await stack.start(settlement)
        for token, order_id in zip((seller, buyer), orders, strict=True):
            done = await wait_order(api, token, order_id, {"EXECUTED"}, timeout=60)
            assert D(done["filledQuantity"]) == D("4.5")

        async def settled() -> list[tuple[D, D]]:
            return [await holding(services, u, asset) for u in (seller_id, buyer_id)]

        want = [(D("90.00"), D(3)), (D("0.00"), D(6))]
        assert await eventually(settled, lambda h: h == want, timeout=30, what="settled") == want
        assert await owed(services, buyer_id) == D("20.00")
        assert await owed(services, seller_id) == 0
        assert await lieu_rows(services, buyer_id) == [D("10.00"), D("-10.00")]
        case = await debit_case(services, buyer_id)
        assert case is not None
        assert (case.status, case.freezes) == (CaseStatus.OPEN, True)
        assert D(case.details["amount"]) == D("20.00")
        assert case.details["fill_id"]
        async with services.sessionmaker() as s:
            told = await s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.user_id == buyer_id,
                    Notification.title == "Your account owes a balance",
                )
            )
            assert told == 1
            position = await s.get(Position, (buyer_id, asset))
            assert position is not None
            assert position.quantity == D(6)
            assert await services.ledger.check(s) == []

        # Owing the firm, the customer cannot withdraw; its next deposits repay the debit first.
        refused = await withdraw(api, buyer, "1.00")
        assert [e["code"] for e in refused["errors"]] == ["ACCOUNT_FROZEN"]
        assert (await deposit(api, buyer, "5.00"))["errors"] == []
        assert await owed(services, buyer_id) == D("15.00")
        assert (await holding(services, buyer_id, asset))[0] == D("0.00")
        case = await debit_case(services, buyer_id)
        assert case is not None
        assert case.status is CaseStatus.OPEN
        assert (await deposit(api, buyer, "50.00"))["errors"] == []
        assert await owed(services, buyer_id) == 0
        assert (await holding(services, buyer_id, asset))[0] == D("35.00")
        case = await debit_case(services, buyer_id)
        assert case is not None
        assert (case.status, case.decision) == (CaseStatus.CLEARED, CaseDecision.CLEAR)
        assert (await withdraw(api, buyer, "10.00"))["errors"] == []
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []
        # The month's statement lists the advance and its repayments, and its activity adds
        # up to the cash it reports (the 10.00 withdrawal still in flight: not listed).
        today = datetime.now(UTC).date()
        statement = await build_statement(s, buyer_id, today.replace(day=1), today)
    debit_rows = [(a.kind, a.amount) for a in statement.activity if a.kind.startswith("DEBIT")]
    assert debit_rows == [
        ("DEBIT_BALANCE", D("20.00")),
        ("DEBIT_RECOVERY", D("-5.00")),
        ("DEBIT_RECOVERY", D("-15.00")),
    ]
    moved = sum((a.amount for a in statement.activity if a.amount is not None), D(0))
    opening = statement.opening_cash.get("USD", D(0))
    assert statement.closing_cash.get("USD", D(0)) - opening == moved
    assert statement.closing_cash["USD"] == D("35.00")
