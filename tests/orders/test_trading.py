"""Orders end to end: GraphQL over HTTP and websockets against the platform's real processes
(API, two matching shards, settlement, liquidity provider), checking cash and shares exactly."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from models.quotes import QuoteData, write_quotes
from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    CANCEL,
    FINAL,
    ORDERS,
    UPDATES,
    admin_token,
    cash,
    get_order,
    grant_shares,
    list_asset,
    next_update,
    order_updates,
    place,
    placed,
    shares,
    trader,
    updates_until,
    wait_book,
    wait_order,
)
from tests.support.polling import eventually
from tests.support.stack import Stack

D = Decimal


async def test_market_buy_by_notional_fills_against_the_liquidity_provider(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("LP")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    book = await wait_book(stack_services, sym)
    assert (book["best_bid"], book["best_ask"]) == ("99.95", "100.05")  # 10 bps around 100
    async with stack.client() as api:
        token, user_id = await trader(api, "1000")
        async with order_updates(api, token) as conn:
            order = await placed(
                api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", notional="100"
            )
            assert order["status"] == "PENDING"
            assert order["notional"] == "100"
            assert order["quantity"] is None
            seen = await updates_until(conn, order["id"], {"FILL"})
        fill_update = seen[-1]
        # $100 buys whole millionths of a share at the ask: floor(100 / 100.05, 1e-6).
        assert fill_update["fill"]["price"] == "100.05"
        assert fill_update["fill"]["quantity"] == "0.9995"
        assert fill_update["order"]["status"] == "EXECUTED"
        assert [u["event"] for u in seen if u["order"]["id"] == order["id"]][-1] == "FILL"

        done = await wait_order(api, token, order["id"], FINAL)
        assert done["status"] == "EXECUTED"
        assert done["filledQuantity"] == "0.9995"
        assert done["averagePrice"] == "100.05"
        assert [f["quantity"] for f in done["fills"]] == ["0.9995"]
        # 0.9995 x 100.05 = 99.999975, rounded down to the cent: 99.99 left the account, the
        # hold's unused cent came back.
        assert await cash(api, token) == {"total": D("900.01"), "available": D("900.01"), "held": 0}
        assert await shares(stack_services, user_id, sym) == (D("0.9995"), D(0))


async def test_two_users_cross_at_the_makers_price(stack: Stack, stack_services: Services) -> None:
    sym = symbol("X")
    await list_asset(stack_services, sym, "50.00")
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        buyer, buyer_id = await trader(api, "1000")
        await grant_shares(stack_services, seller_id, sym, "10")

        ask = await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="10", price="50.00",
        )  # fmt: skip
        await wait_order(api, seller, ask["id"], {"PENDING"})
        assert await shares(stack_services, seller_id, sym) == (D(10), D(10))  # held for sale

        bid = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="10", price="50.50",
        )  # fmt: skip
        assert (await cash(api, buyer))["held"] == D("505.00")  # 10 x the limit, until it fills
        bought = await wait_order(api, buyer, bid["id"], FINAL)
        sold = await wait_order(api, seller, ask["id"], FINAL)

        assert bought["status"] == sold["status"] == "EXECUTED"
        assert bought["averagePrice"] == sold["averagePrice"] == "50"  # the maker's price
        assert bought["fills"][0]["id"] == sold["fills"][0]["id"]
        assert await cash(api, buyer) == {"total": D(500), "available": D(500), "held": 0}
        assert await cash(api, seller) == {"total": D(500), "available": D(500), "held": 0}
        assert await shares(stack_services, buyer_id, sym) == (D(10), D(0))
        assert await shares(stack_services, seller_id, sym) == (D(0), D(0))
        # The fill also opened the buyer's position (default portfolio) at the fill price.
        holdings = await api.gql(
            "{ portfolio { assets { assetId quantity averageCost } } }", token=buyer
        )
        assert holdings["data"]["portfolio"]["assets"] == [
            {"assetId": sym, "quantity": "10", "averageCost": "50"}
        ]


async def test_partial_fill_then_cancel_releases_exactly_the_unfilled_hold(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("P")
    await list_asset(stack_services, sym, "40.00")
    async with stack.client() as api:
        buyer, _ = await trader(api, "1000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "4")
        bid = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="10", price="40.00", clientOrderId="partial-1",
        )  # fmt: skip
        await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="4", price="40.00",
        )  # fmt: skip
        partial = await wait_order(api, buyer, bid["id"], {"PARTIALLY_FILLED"})
        assert partial["filledQuantity"] == "4"
        assert partial["remainingQuantity"] == "6"
        assert await cash(api, buyer) == {"total": D(840), "available": D(600), "held": D(240)}

        body = await api.gql(CANCEL, {"id": bid["id"]}, buyer)
        result = body["data"]["cancelOrder"]
        assert result["errors"] == []
        assert result["order"]["status"] == "CANCELLED"
        assert result["order"]["filledQuantity"] == "4"
        assert result["order"]["cancelReason"] == "USER"
        assert await cash(api, buyer) == {"total": D(840), "available": D(840), "held": 0}

        again = (await api.gql(CANCEL, {"id": bid["id"]}, buyer))["data"]["cancelOrder"]
        assert [e["code"] for e in again["errors"]] == ["NOT_CANCELLABLE"]


async def test_ioc_fills_what_it_can_and_cancels_the_rest(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("I")
    await list_asset(stack_services, sym, "30.00")
    async with stack.client() as api:
        buyer, _ = await trader(api, "1000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "3")
        ask = await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="3", price="30.00",
        )  # fmt: skip
        await wait_order(api, seller, ask["id"], {"PENDING"})
        ioc = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="10", price="30.00", timeInForce="IOC",
        )  # fmt: skip
        done = await wait_order(api, buyer, ioc["id"], FINAL)
        assert done["status"] == "CANCELLED"
        assert done["cancelReason"] == "IOC_REMAINDER"
        assert done["filledQuantity"] == "3"
        assert done["remainingQuantity"] == "0"
        assert await cash(api, buyer) == {"total": D(910), "available": D(910), "held": 0}


async def test_fok_fills_whole_or_not_at_all(stack: Stack, stack_services: Services) -> None:
    sym = symbol("F")
    await list_asset(stack_services, sym, "31.00")
    async with stack.client() as api:
        buyer, buyer_id = await trader(api, "1000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "3")
        ask = await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="3", price="31.00",
        )  # fmt: skip
        await wait_order(api, seller, ask["id"], {"PENDING"})
        fok = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="10", price="31.00", timeInForce="FOK",
        )  # fmt: skip
        killed = await wait_order(api, buyer, fok["id"], FINAL)
        assert killed["status"] == "CANCELLED"
        assert killed["cancelReason"] == "FOK_UNFILLABLE"
        assert killed["filledQuantity"] == "0"
        assert killed["fills"] == []
        assert await cash(api, buyer) == {"total": D(1000), "available": D(1000), "held": 0}
        assert (await get_order(api, seller, ask["id"]) or {})["status"] == "PENDING"

        whole = await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="3", price="31.00", timeInForce="FOK",
        )  # fmt: skip
        assert (await wait_order(api, buyer, whole["id"], FINAL))["status"] == "EXECUTED"
        assert await shares(stack_services, buyer_id, sym) == (D(3), D(0))


async def test_stop_loss_triggers_when_the_price_crosses_its_stop(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("S")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    await wait_book(stack_services, sym)
    async with stack.client() as api:
        token, user_id = await trader(api)
        await grant_shares(stack_services, user_id, sym, "2")
        async with order_updates(api, token) as conn:
            stop = await placed(
                api, token, assetId=sym, orderType="SELL", orderSubType="STOP_LOSS",
                quantity="1", stopPrice="95.00",
            )  # fmt: skip
            await asyncio.sleep(0.5)
            assert (await get_order(api, token, stop["id"]) or {})["status"] == "PENDING"

            # The feed moves the price to 94: the provider re-quotes around it, then the
            # reference reaches the shard and the stop triggers into a market sell.
            asset = await stack_services.assets.get(sym)
            assert asset is not None
            await write_quotes(
                stack_services.redis,
                stack.prefix,
                [QuoteData(sym, D("94.00"), None, None, asset.updated_at)],
            )
            await eventually(
                lambda: stack_services.exchange.book(sym),
                lambda book: bool(book and book.get("best_bid") == "93.95"),
                what="the liquidity provider's bid at 93.95",
            )
            await stack_services.exchange.reference_prices([(asset, D("94.00"))])
            seen = await updates_until(conn, stop["id"], {"FILL"})
        events = [u["event"] for u in seen if u["order"]["id"] == stop["id"]]
        assert "TRIGGERED" in events
        assert seen[-1]["fill"]["price"] == "93.95"
        done = await wait_order(api, token, stop["id"], FINAL)
        assert done["status"] == "EXECUTED"
        assert await cash(api, token) == {"total": D("93.95"), "available": D("93.95"), "held": 0}
        assert await shares(stack_services, user_id, sym) == (D(1), D(0))


async def test_users_cannot_see_cancel_or_hear_each_others_orders(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("V")
    await list_asset(stack_services, sym, "20.00")
    async with stack.client() as api:
        alice, _ = await trader(api, "100")
        mallory, _ = await trader(api, "100")
        async with order_updates(api, mallory) as spy, order_updates(api, alice) as own:
            order = await placed(
                api, alice, assetId=sym, orderType="BUY", orderSubType="LIMIT",
                quantity="1", price="19.00",
            )  # fmt: skip
            accepted = await next_update(own)
            assert (accepted["event"], accepted["order"]["id"]) == ("ACCEPTED", order["id"])
            with pytest.raises(TimeoutError):
                await next_update(spy, timeout=1.0)

        assert await get_order(api, mallory, order["id"]) is None
        listed = await api.gql(ORDERS, {"first": 50}, mallory)
        assert listed["data"]["orders"]["edges"] == []
        stolen = (await api.gql(CANCEL, {"id": order["id"]}, mallory))["data"]["cancelOrder"]
        assert [e["code"] for e in stolen["errors"]] == ["NOT_FOUND"]
        assert (await get_order(api, alice, order["id"]) or {})["status"] == "PENDING"

        # Without a token there is no subscription at all.
        async with api.ws({}) as conn:
            await conn.send(
                json.dumps({"id": "x", "type": "subscribe", "payload": {"query": UPDATES}})
            )
            msg = json.loads(await asyncio.wait_for(conn.recv(), 5))
        payload = msg["payload"]
        errors = payload if msg["type"] == "error" else payload["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]


async def test_selling_unowned_shares_and_overspending_are_errors_not_orders(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("E")
    await list_asset(stack_services, sym, "10.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "50")
        await grant_shares(stack_services, user_id, sym, "1")
        short = await place(
            api, token, assetId=sym, orderType="SELL", orderSubType="LIMIT",
            quantity="2", price="10.00",
        )  # fmt: skip
        assert short["order"] is None
        assert [e["code"] for e in short["errors"]] == ["INSUFFICIENT_SHARES"]
        broke = await place(
            api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="6", price="10.00",
        )  # fmt: skip
        assert broke["order"] is None
        assert [e["code"] for e in broke["errors"]] == ["INSUFFICIENT_BUYING_POWER"]
        listed = await api.gql(ORDERS, {"first": 50}, token)
        assert listed["data"]["orders"]["edges"] == []
        assert await cash(api, token) == {"total": D(50), "available": D(50), "held": 0}
        assert await shares(stack_services, user_id, sym) == (D(1), D(0))

        # Exactly the buying power is fine: 5 x 10.00 = 50.00.
        ok = await placed(
            api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="5", price="10.00",
        )  # fmt: skip
        assert ok["status"] == "PENDING"
        assert await cash(api, token) == {"total": D(50), "available": 0, "held": D(50)}


async def test_orders_list_filters_and_pages(stack: Stack, stack_services: Services) -> None:
    sym = symbol("L")
    await list_asset(stack_services, sym, "10.00")
    async with stack.client() as api:
        token, _ = await trader(api, "1000")
        ids = []
        for i in range(5):
            order = await placed(
                api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
                quantity="1", price=f"9.{i}0", clientOrderId=f"page-{i}",
            )  # fmt: skip
            ids.append(order["id"])
        first = (await api.gql(ORDERS, {"first": 2}, token))["data"]["orders"]
        assert [e["node"]["id"] for e in first["edges"]] == ids[::-1][:2]  # newest first
        assert first["pageInfo"]["hasNextPage"] is True
        rest = (
            await api.gql(ORDERS, {"first": 10, "after": first["pageInfo"]["endCursor"]}, token)
        )["data"]["orders"]
        assert [e["node"]["id"] for e in rest["edges"]] == ids[::-1][2:]
        assert rest["pageInfo"]["hasNextPage"] is False
        await api.gql(CANCEL, {"id": ids[0]}, token)
        cancelled = (await api.gql(ORDERS, {"status": "CANCELLED"}, token))["data"]["orders"]
        assert [e["node"]["id"] for e in cancelled["edges"]] == [ids[0]]
        other = (await api.gql(ORDERS, {"assetId": "NOPE"}, token))["data"]["orders"]
        assert other["edges"] == []
        bad = await api.gql(ORDERS, {"after": "not-a-cursor"}, token)
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_day_orders_expire_at_the_close(stack: Stack, stack_services: Services) -> None:
    sym = symbol("D")
    await list_asset(stack_services, sym, "25.00")
    async with stack.client() as api:
        token, _ = await trader(api, "100")
        day = await placed(
            api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="2", price="24.00", timeInForce="DAY",
        )  # fmt: skip
        gtc = await placed(
            api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
            quantity="1", price="24.00", timeInForce="GTC",
        )  # fmt: skip
        await wait_order(api, token, gtc["id"], {"PENDING"})
        await stack_services.exchange.expire_day([sym])  # what DayExpiry sends at the close
        expired = await wait_order(api, token, day["id"], FINAL)
        assert expired["status"] == "EXPIRED"
        assert (await get_order(api, token, gtc["id"]) or {})["status"] == "PENDING"
        assert await cash(api, token) == {"total": D(100), "available": D(76), "held": D(24)}


CREATE_ASSET = """mutation($input: CreateAssetInput!) { createAsset(input: $input) {
  asset { id } errors { code field } } }"""
CONFIGURE_LP = """mutation($input: ConfigureLiquidityInput!) { configureLiquidity(input: $input) {
  config { assetId enabled spreadBps levels quoteNotional } errors { code field } } }"""


async def test_a_new_asset_has_no_liquidity_provider_until_an_admin_configures_one(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("N")
    async with stack.client() as api:
        admin = await admin_token(api, stack_services)
        created = await api.gql(
            CREATE_ASSET,
            {"input": {"symbol": sym, "name": "New Co", "assetClass": "CRYPTO",
                       "referencePrice": "10.00"}},
            admin,
        )  # fmt: skip
        assert created["data"]["createAsset"]["errors"] == []
        await asyncio.sleep(1.0)  # several provider passes
        book = await stack_services.exchange.book(sym)
        assert not (book or {}).get("bids")
        assert not (book or {}).get("asks")

        customer, _ = await trader(api)
        refused = await api.gql(CONFIGURE_LP, {"input": {"assetId": sym}}, customer)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        unknown = await api.gql(CONFIGURE_LP, {"input": {"assetId": "NOPE7"}}, admin)
        assert [e["code"] for e in unknown["data"]["configureLiquidity"]["errors"]] == [
            "UNKNOWN_ASSET"
        ]
        configured = await api.gql(
            CONFIGURE_LP, {"input": {"assetId": sym, "spreadBps": 20, "levels": 2}}, admin
        )
        assert configured["data"]["configureLiquidity"]["config"] == {
            "assetId": sym, "enabled": True, "spreadBps": 20, "levels": 2,
            "quoteNotional": "25000",
        }  # fmt: skip
        book = await wait_book(stack_services, sym)
        assert (book["best_bid"], book["best_ask"]) == ("9.99", "10.01")
        assert len(book["bids"]) == len(book["asks"]) == 2


async def test_racing_orders_never_hold_the_same_dollar_or_share_twice(
    stack: Stack, stack_services: Services
) -> None:
    """Twenty buys of $100 race on $1,000 of cash, and twenty sells of 1 share race on 10
    shares (all resting far from the market): exactly ten of each are accepted, the others are
    refused (INSUFFICIENT_BUYING_POWER, INSUFFICIENT_SHARES), and the holds add up to the
    balance, not beyond."""
    sym = symbol("RC")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "1000")
        await grant_shares(stack_services, user_id, sym, "10")

        async def order(side: str, price: str) -> dict[str, Any]:
            return await place(
                api, token, assetId=sym, orderType=side, orderSubType="LIMIT",
                quantity="1", price=price, timeInForce="GTC",
            )  # fmt: skip

        buys = await asyncio.gather(*(order("BUY", "100.00") for _ in range(20)))
        sells = await asyncio.gather(*(order("SELL", "140.00") for _ in range(20)))
        for results, refusal in (
            (buys, "INSUFFICIENT_BUYING_POWER"),
            (sells, "INSUFFICIENT_SHARES"),
        ):
            accepted = [r for r in results if r["order"] is not None]
            refused = [r for r in results if r["order"] is None]
            assert len(accepted) == 10, results
            assert {e["code"] for r in refused for e in r["errors"]} == {refusal}
        money = await cash(api, token)
        assert money["held"] == Decimal("1000")
        assert money["available"] == Decimal("0")
        assert await shares(stack_services, user_id, sym) == (Decimal("10"), Decimal("10"))
    async with stack_services.sessionmaker() as s:
        assert await stack_services.ledger.check(s) == []


async def test_a_stop_loss_sells_at_the_bid_in_a_falling_market_without_a_feed(
    stack: Stack, stack_services: Services
) -> None:
    """An asset traded only between users (no feed, no liquidity provider), listed at 100.00:
    a resting stop-loss sell at 95.00, a bid at 94.00, a trade printing at 94.00. The stop
    triggers on that trade and sells at the bid: the collar follows the venue's own trades,
    not the stale listing price (which put its floor at 95.00 and cancelled it unfilled)."""
    sym = symbol("FM")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "10")
        other, other_id = await trader(api)
        await grant_shares(stack_services, other_id, sym, "1")
        buyer, _ = await trader(api, "10000")
        stop = await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="STOP_LOSS",
            quantity="5", stopPrice="95.00", timeInForce="GTC",
        )  # fmt: skip
        await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="20",
            price="94.00", timeInForce="GTC",
        )  # fmt: skip
        await placed(
            api, other, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="1",
            price="94.00", timeInForce="GTC",
        )  # fmt: skip
        done = await wait_order(api, seller, stop["id"], FINAL)
        assert done["status"] == "EXECUTED", done
        assert done["cancelReason"] is None
        assert Decimal(done["averagePrice"]) == Decimal("94")
        assert [(f["quantity"], f["price"]) for f in done["fills"]] == [("5", "94")]


async def test_a_market_buy_is_planned_on_the_venues_last_trade_not_the_listing_price(
    stack: Stack, stack_services: Services
) -> None:
    """No feed: listed at 100.00, the venue has since traded at 110.00. A market buy's cap
    (and hold) follows that trade (110.00 + 5% collar), so it fills at the 110.00 ask instead
    of dying against a cap of 105.00 computed from the listing."""
    sym = symbol("RM")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "10")
        first, _ = await trader(api, "1000")
        second, _ = await trader(api, "1000")
        await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="10",
            price="110.00", timeInForce="GTC",
        )  # fmt: skip
        lifted = await placed(
            api, first, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="1",
            price="110.00", timeInForce="GTC",
        )  # fmt: skip
        await wait_order(api, first, lifted["id"], {"EXECUTED"})

        async def marked() -> object:
            book = await stack_services.exchange.book(sym)
            return book and Decimal(book.get("mark") or 0) == Decimal("110")

        await eventually(marked, what="the book's mark at the last trade")
        bought = await placed(
            api, second, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="2"
        )
        done = await wait_order(api, second, bought["id"], FINAL)
        assert done["status"] == "EXECUTED", done
        assert Decimal(done["averagePrice"]) == Decimal("110")
        money = await cash(api, second)
        assert money["total"] == Decimal("780")  # 1000 - 2 x 110.00
        assert money["held"] == Decimal("0")
