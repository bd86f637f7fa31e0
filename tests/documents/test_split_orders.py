"""A stock split with open orders, on the real platform (API, shard, settlement processes,
PostgreSQL, Redis): the orders' terms in ``order(id)`` and in the engine, holds, cost basis and
market value, price alerts, the ledger, and the engine's book after a shard restart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bourse.keys import shard_for
from matching.codec import AssetScales
from matching.core import Engine
from matching.wire import decode_command
from models.assets import Asset
from models.corporate_actions import SplitRequest
from models.engine_record import rebuild_commands
from models.exchange import scales
from models.ledger import AccountKind
from models.notifications.tables import Kind, Notification, PriceAlert
from models.orders.outbox import OutboxEntry
from models.positions import Position
from models.services import Services
from tests.notifications.helpers import CREATE_ALERT
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    ACCOUNT,
    get_order,
    grant_shares,
    list_asset,
    place,
    placed,
    trader,
    wait_order,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
pytestmark = pytest.mark.timeout(240)


async def held_cash(api: Api, token: str) -> D:
    body = await api.gql(ACCOUNT, token=token)
    (usd,) = [c for c in body["data"]["account"]["cash"] if c["currency"] == "USD"]
    return D(usd["held"])


async def book_when(services: Services, asset: str, check: Any, what: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        return await services.exchange.book(asset) or {}

    found: dict[str, Any] = await eventually(fetch, check, timeout=30, what=what)
    return found


def levels(book: dict[str, Any], side: str) -> list[tuple[D, D]]:
    return [(D(p), D(q)) for p, q, _ in book.get(side) or []]


async def rebuilt_from_postgres(
    stack: Stack, services: Services, asset: str
) -> tuple[Engine, AssetScales]:
    """An engine rebuilt from PostgreSQL alone (Redis lost: models/engine_record.py) for the
    asset's shard, checked to ignore the asset's SPLIT command sent again."""
    shards = stack.settings.matching_shards
    async with services.sessionmaker() as s:
        cmds, _ = await rebuild_commands(s, shard_for(asset, shards), shards)
        a = await s.get(Asset, asset)
        assert a is not None
        (split_row,) = await s.scalars(
            select(OutboxEntry.command).where(
                OutboxEntry.asset_id == asset, OutboxEntry.command.contains('"SPLIT"')
            )
        )
    rebuilt = Engine()
    for c in cmds:
        rebuilt.apply(c)
    assert rebuilt.apply(decode_command(split_row)) == []
    return rebuilt, scales(a)


async def split(services: Services, asset: str, n: int, d: int) -> None:
    today = datetime.now(UTC).date()
    action = await services.corporate_actions.record_split(
        uuid.uuid4(), SplitRequest(asset, n, d, today)
    )
    assert action.status.value == "APPLIED"


async def test_two_for_one_adjusts_orders_holds_alerts_and_the_book(
    stack: Stack, stack_services: Services
) -> None:
    services = stack_services
    asset = symbol("SPL")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        buyer, _ = await trader(api, "5000")
        seller, seller_id = await trader(api)
        await grant_shares(services, seller_id, asset, "10")
        bid = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                           quantity="10", price="80.00", timeInForce="GTC")  # fmt: skip
        stop = await placed(api, seller, assetId=asset, orderType="SELL",
                            orderSubType="STOP_LOSS", quantity="10", stopPrice="90.00",
                            timeInForce="GTC")  # fmt: skip
        await wait_order(api, buyer, bid["id"], {"PENDING"})
        await wait_order(api, seller, stop["id"], {"PENDING"})
        alert = await api.gql(
            CREATE_ALERT,
            {"input": {"assetId": asset, "condition": "PRICE_ABOVE", "threshold": "120.00"}},
            buyer,
        )
        assert alert["data"]["createPriceAlert"]["errors"] == []
        await book_when(services, asset, lambda b: levels(b, "bids") == [(D(80), D(10))], "bid")
        held_before = await held_cash(api, buyer)
        assert held_before == D("800.00")
        async with services.sessionmaker() as s:
            pos = await s.get(Position, (seller_id, asset))
            assert pos is not None
            cost_before, value_before = pos.cost_basis, pos.quantity * D(100)

        await split(services, asset, 2, 1)

        # order(id): quantity doubled, price halved; the stop's stop price halved.
        got = await get_order(api, buyer, bid["id"])
        assert got is not None
        assert (D(got["quantity"]), D(got["price"]), got["status"]) == (D(20), D(40), "PENDING")
        got_stop = await get_order(api, seller, stop["id"])
        assert got_stop is not None
        assert (D(got_stop["quantity"]), D(got_stop["stopPrice"])) == (D(20), D(45))
        # The hold is unchanged to the cent: 20 x 40.00 = 10 x 80.00.
        assert await held_cash(api, buyer) == held_before
        async with services.sessionmaker() as s:
            pos = await s.get(Position, (seller_id, asset))
            a = await s.get(Asset, asset)
            assert pos is not None
            assert a is not None
            assert pos.quantity == D(20)
            assert pos.cost_basis == cost_before
            assert pos.quantity * a.reference_price == value_before
            (threshold,) = await s.scalars(
                select(PriceAlert.threshold).where(PriceAlert.asset_id == asset)
            )
            assert threshold == D(60)
            # The stop-loss sell's share hold follows its quantity: 10 -> 20 shares.
            shares = await services.ledger.balances(s, seller_id, AccountKind.SHARES)
            assert [(b.total, b.held) for b in shares if b.asset == asset] == [(D(20), D(20))]
            # Each order's owner is told (inbox), in the split's transaction.
            told = (
                await s.scalars(
                    select(Notification.body).where(
                        Notification.order_id == uuid.UUID(bid["id"]),
                        Notification.kind == Kind.CORPORATE_ACTION,
                    )
                )
            ).all()
            assert told == [f"{asset} split: your open buy order for 10 at 80 is now 20 at 40."]
            assert await services.ledger.check(s) == []
        # The engine's book has the adjusted order (through the SPLIT command).
        after = await book_when(
            services, asset, lambda b: levels(b, "bids") == [(D(40), D(20))], "split bid"
        )

        # The split replays identically after a shard restart: the same book.
        shard = f"shard-{shard_for(asset, stack.settings.matching_shards)}"
        await stack.kill(shard)
        await stack.start(shard)
        restarted = await book_when(
            services, asset, lambda b: b.get("input_id") is not None, "restarted shard's book"
        )
        assert levels(restarted, "bids") == levels(after, "bids")
        assert levels(restarted, "asks") == levels(after, "asks")
        # A rebuild from PostgreSQL (Redis lost) gives the same book, and ignores the split's
        # command if the outbox sent it again.
        rebuilt, sc = await rebuilt_from_postgres(stack, services, asset)
        bids, _ = rebuilt.depth(asset)
        assert [(sc.price_decimal(p), D(q)) for p, q, _ in bids] == levels(after, "bids")
        stop_order = rebuilt.orders[stop["id"]]
        assert (stop_order.stop_price, stop_order.remaining) == (sc.price(D(45)), 20)

        # A matching trade at the new price fills the adjusted order completely.
        other, other_id = await trader(api)
        await grant_shares(services, other_id, asset, "20")
        await placed(api, other, assetId=asset, orderType="SELL", orderSubType="LIMIT",
                     quantity="20", price="40.00", timeInForce="GTC")  # fmt: skip
        done = await wait_order(api, buyer, bid["id"], {"EXECUTED"}, timeout=30)
        assert {(D(f["quantity"]), D(f["price"])) for f in done["fills"]} == {(D(20), D(40))}
        assert await held_cash(api, buyer) == D(0)
        async with services.sessionmaker() as s:
            assert await services.ledger.check(s) == []


async def test_three_for_two_and_one_for_ten_round_as_documented(
    stack: Stack, stack_services: Services
) -> None:
    services = stack_services
    asset = symbol("SPR")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        buyer, _ = await trader(api, "5000")
        odd = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                           quantity="7", price="100.01", timeInForce="GTC")  # fmt: skip
        small = await placed(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                             quantity="5", price="99.00", timeInForce="GTC")  # fmt: skip
        await wait_order(api, buyer, odd["id"], {"PENDING"})
        await wait_order(api, buyer, small["id"], {"PENDING"})
        assert await held_cash(api, buyer) == D("700.07") + D("495.00")

        # 3-for-2: 7 -> 10.5 -> 10 (down to whole shares); 100.01 / 1.5 = 66.6733 -> 66.67
        # (a buy's limit rounds down); the hold is what placing 10 @ 66.67 fresh holds.
        await split(services, asset, 3, 2)
        got = await get_order(api, buyer, odd["id"])
        assert got is not None
        assert (D(got["quantity"]), D(got["price"])) == (D(10), D("66.67"))
        got = await get_order(api, buyer, small["id"])
        assert got is not None
        assert (D(got["quantity"]), D(got["price"])) == (D(7), D(66))  # 7.5 -> 7, 99 / 1.5
        assert await held_cash(api, buyer) == D("666.70") + D("462.00")
        await book_when(
            services,
            asset,
            lambda b: levels(b, "bids") == [(D("66.67"), D(10)), (D(66), D(7))],
            "3-for-2 book",
        )

        # 1-for-10: 10 -> 1 @ 666.70; 7 -> 0.7 -> nothing: cancelled, its hold released.
        await split(services, asset, 1, 10)
        got = await get_order(api, buyer, odd["id"])
        assert got is not None
        assert (D(got["quantity"]), D(got["price"])) == (D(1), D("666.70"))
        gone = await wait_order(api, buyer, small["id"], {"CANCELLED"})
        assert gone["cancelReason"] == "SPLIT"
        assert await held_cash(api, buyer) == D("666.70")
        await book_when(
            services, asset, lambda b: levels(b, "bids") == [(D("666.70"), D(1))], "reverse book"
        )
        async with services.sessionmaker() as s:
            assert await services.ledger.check(s) == []


async def test_a_trade_in_flight_at_the_split_settles_in_post_split_shares(
    stack: Stack, stack_services: Services
) -> None:
    """The engine trades, the settlement has not applied it yet (stopped), the split commits:
    the trade then settles as if before the split (shares x 2, price / 2, cash as traded)."""
    services = stack_services
    asset = symbol("SPF")
    await list_asset(services, asset, "100.00", fractionable=False)
    settlement = f"settlement-{shard_for(asset, stack.settings.matching_shards)}"
    async with stack.client() as api:
        buyer, buyer_id = await trader(api, "5000")
        seller, seller_id = await trader(api)
        await grant_shares(services, seller_id, asset, "10")
        await stack.kill(settlement)
        try:
            ask = await placed(api, seller, assetId=asset, orderType="SELL",
                               orderSubType="LIMIT", quantity="10", price="100.00",
                               timeInForce="GTC")  # fmt: skip
            bid = await placed(api, buyer, assetId=asset, orderType="BUY",
                               orderSubType="LIMIT", quantity="10", price="100.00",
                               timeInForce="GTC")  # fmt: skip
            # Traded in the engine (the book is empty again), not settled.
            await book_when(services, asset, lambda b: b.get("last_price") is not None, "the trade")
            await split(services, asset, 2, 1)
            # Until the settlement has seen the engine apply it, no new order of the asset.
            refused = await place(api, buyer, assetId=asset, orderType="BUY",
                                  orderSubType="LIMIT", quantity="1", price="50.00",
                                  timeInForce="GTC")  # fmt: skip
            assert [e["code"] for e in refused["errors"]] == ["ASSET_NOT_TRADABLE"]
        finally:
            await stack.start(settlement)
        done = await wait_order(api, buyer, bid["id"], {"EXECUTED"}, timeout=60)
        assert (D(done["quantity"]), D(done["filledQuantity"])) == (D(20), D(20))
        await wait_order(api, seller, ask["id"], {"EXECUTED"}, timeout=60)
        async with services.sessionmaker() as s:
            bought = await s.get(Position, (buyer_id, asset))
            assert bought is not None
            assert (bought.quantity, bought.cost_basis) == (D(20), D("1000.00"))
            for who, shares in ((buyer_id, D(20)), (seller_id, D(0))):
                held = await services.ledger.balances(s, who, AccountKind.SHARES)
                assert [b.total for b in held if b.asset == asset] in ([shares], [])
            assert await services.ledger.check(s) == []
        assert await held_cash(api, buyer) == D(0)

        async def reopened() -> bool:
            async with services.sessionmaker() as s:
                a = await s.get(Asset, asset)
                return a is not None and not a.splitting

        await eventually(reopened, lambda ok: ok, timeout=30, what="trading resumes")
        again = await place(api, buyer, assetId=asset, orderType="BUY", orderSubType="LIMIT",
                            quantity="1", price="50.00", timeInForce="GTC")  # fmt: skip
        assert again["errors"] == []


async def test_a_bracket_rebuilt_after_a_split_keeps_the_splits_terms(
    stack: Stack, stack_services: Services
) -> None:
    """A resting bracket (its exits waiting for the entry) across a 2-for-1 split, then a
    rebuild from PostgreSQL (Redis lost): the rebuilt group has the split's prices and
    quantities, entry and exits alike, and ignores the split's command sent again."""
    from tests.orders.test_brackets import bracket

    services = stack_services
    asset = symbol("SPB")
    await list_asset(services, asset, "100.00", fractionable=False)
    async with stack.client() as api:
        buyer, _ = await trader(api, "5000")
        entry = await bracket(api, buyer, asset, quantity="10", price="90.00",
                              takeProfit={"price": "110.00"},
                              stopLoss={"stopPrice": "85.00"})  # fmt: skip
        await wait_order(api, buyer, entry["id"], {"PENDING"})
        await book_when(services, asset, lambda b: levels(b, "bids") == [(D(90), D(10))], "bid")
        await split(services, asset, 2, 1)
        after = await book_when(
            services, asset, lambda b: levels(b, "bids") == [(D(45), D(20))], "split bid"
        )
        got = await get_order(api, buyer, entry["id"])
        assert got is not None
        assert (D(got["quantity"]), D(got["price"])) == (D(20), D(45))

    rebuilt, sc = await rebuilt_from_postgres(stack, services, asset)
    bids, _ = rebuilt.depth(asset)
    assert [(sc.price_decimal(p), D(q)) for p, q, _ in bids] == levels(after, "bids")
    root = rebuilt.orders[entry["id"]]
    assert (root.price, root.remaining) == (sc.price(D(45)), 20)
    group = root.group
    assert group is not None
    exits = {o.order_type: o for o in group.legs}
    assert exits["LIMIT"].price == sc.price(D(55))
    assert exits["STOP_LOSS"].stop_price == sc.price(D("42.50"))
