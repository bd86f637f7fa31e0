"""replaceOrder end to end (issue 14 item 3): GraphQL against the platform's real processes.

What a user checks: who fills first after a replace (time priority kept only when the quantity
goes down and the price is unchanged), what the account holds (exactly what the new terms
need, never more than the cash there is, even when replaces race), what a partly filled order
becomes, that a replace racing a fill either happens or changes nothing, and the REPLACED
event on ``orderUpdates``.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bourse.keys import events_key, shard_for
from matching.wire import EVENT_FIELD, dumps
from models.orders import Order, OrderReplacement, ReplaceOrderRequest
from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    FINAL,
    ORDER_FIELDS,
    cash,
    get_order,
    grant_shares,
    list_asset,
    order_updates,
    placed,
    shares,
    trader,
    updates_until,
    wait_order,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
REPLACE = f"""mutation($id: ID!, $input: ReplaceOrderInput!) {{ replaceOrder(id: $id, input: $input)
  {{ order {{ {ORDER_FIELDS} }} errors {{ field code message }} }} }}"""


async def replace(api: Api, token: str, order_id: str, **fields: Any) -> dict[str, Any]:
    body = await api.gql(REPLACE, {"id": order_id, "input": fields}, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["replaceOrder"]
    return result


async def replaced(api: Api, token: str, order_id: str, **fields: Any) -> dict[str, Any]:
    result = await replace(api, token, order_id, **fields)
    assert result["errors"] == [], result
    order: dict[str, Any] = result["order"]
    return order


async def rest(api: Api, token: str, sym: str, side: str, qty: str, price: str) -> dict[str, Any]:
    """A resting GTC limit order. Its command is on the shard's stream when this returns, so
    an order placed after it queues behind it."""
    return await placed(
        api, token, assetId=sym, orderType=side, orderSubType="LIMIT", quantity=qty,
        price=price, timeInForce="GTC",
    )  # fmt: skip


async def sellers(api: Api, services: Services, sym: str, n: int, qty: str) -> list[str]:
    tokens = []
    for _ in range(n):
        token, user_id = await trader(api)
        await grant_shares(services, user_id, sym, qty)
        tokens.append(token)
    return tokens


async def ledger_clean(services: Services) -> None:
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []


async def test_quantity_down_at_the_same_price_keeps_time_priority(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("RK")
    await list_asset(stack_services, sym, "50.00")
    async with stack.client() as api:
        first, second = await sellers(api, stack_services, sym, 2, "10")
        buyer, _ = await trader(api, "1000")
        a = await rest(api, first, sym, "SELL", "10", "50.00")
        b = await rest(api, second, sym, "SELL", "10", "50.00")
        smaller = await replaced(api, first, a["id"], quantity="6")
        assert (smaller["id"], smaller["quantity"], smaller["remainingQuantity"]) == (
            a["id"], "6", "6",
        )  # fmt: skip
        await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="6",
            price="50.00", timeInForce="IOC",
        )  # fmt: skip
        done = await wait_order(api, first, a["id"], FINAL)
        assert (done["status"], done["filledQuantity"]) == ("EXECUTED", "6")
        untouched = await get_order(api, second, b["id"])
        assert untouched is not None
        assert (untouched["status"], untouched["filledQuantity"]) == ("PENDING", "0")


async def test_quantity_up_or_a_new_price_loses_time_priority(
    stack: Stack, stack_services: Services
) -> None:
    async with stack.client() as api:
        for change in ({"quantity": "12"}, {"price": "50.01"}):
            sym = symbol("RL")
            await list_asset(stack_services, sym, "50.00")
            first, second = await sellers(api, stack_services, sym, 2, "20")
            buyer, _ = await trader(api, "2000")
            price_b = "50.01" if "price" in change else "50.00"
            a = await rest(api, first, sym, "SELL", "10", "50.00")
            b = await rest(api, second, sym, "SELL", "10", price_b)
            moved = await replaced(api, first, a["id"], **change)
            assert moved["quantity"] == change.get("quantity", "10")
            assert moved["price"] == change.get("price", "50")
            # The replaced order queues behind the other one at its (new) price.
            await placed(
                api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="10",
                price=price_b, timeInForce="IOC",
            )  # fmt: skip
            done = await wait_order(api, second, b["id"], FINAL)
            assert (done["status"], done["filledQuantity"]) == ("EXECUTED", "10"), change
            behind = await get_order(api, first, a["id"])
            assert behind is not None
            assert (behind["status"], behind["filledQuantity"]) == ("PENDING", "0"), change
    async with stack_services.sessionmaker() as s:
        kept = (await s.scalars(select(OrderReplacement.kept_priority))).all()
    assert False in kept


async def test_the_hold_follows_the_new_terms_and_a_bigger_one_needs_the_cash(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("RH")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        buyer, _ = await trader(api, "1000")
        bid = await rest(api, buyer, sym, "BUY", "5", "100.00")
        assert (await cash(api, buyer))["held"] == D(500)
        await replaced(api, buyer, bid["id"], quantity="8")
        assert (await cash(api, buyer))["held"] == D(800)
        lower = await replaced(api, buyer, bid["id"], price="90.00")
        assert (lower["quantity"], lower["price"]) == ("8", "90")
        assert (await cash(api, buyer))["held"] == D(720)  # trimmed when the shard confirmed
        await replaced(api, buyer, bid["id"], quantity="11")
        assert (await cash(api, buyer))["held"] == D(990)

        refused = await replace(api, buyer, bid["id"], quantity="12")
        assert [e["code"] for e in refused["errors"]] == ["INSUFFICIENT_BUYING_POWER"]
        assert await cash(api, buyer) == {"total": D(1000), "available": D(10), "held": D(990)}
        same = await get_order(api, buyer, bid["id"])
        assert same is not None
        assert (same["quantity"], same["price"], same["status"]) == ("11", "90", "PENDING")

        for bad, code in (
            ({"quantity": "0"}, "INVALID_QUANTITY"),
            ({"price": "90.001"}, "INVALID_PRICE"),
            ({"stopPrice": "95.00"}, "INVALID_PRICE"),  # a limit order has no stop
            ({"timeInForce": "IOC"}, "INVALID_INPUT"),
        ):
            result = await replace(api, buyer, bid["id"], **bad)
            assert [e["code"] for e in result["errors"]] == [code], (bad, result)
        stranger, _ = await trader(api, "10")
        result = await replace(api, stranger, bid["id"], quantity="1")
        assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
        assert (await cash(api, buyer))["held"] == D(990)
    await ledger_clean(stack_services)


async def test_racing_replaces_never_hold_more_than_the_cash(
    stack: Stack, stack_services: Services
) -> None:
    """Five resting buys of 1 at 100 on $1,000 (held 500); five replaces to 3 race, each
    needing $200 more: exactly two get it, the others are refused and change nothing."""
    sym = symbol("RR")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        buyer, _ = await trader(api, "1000")
        bids = [await rest(api, buyer, sym, "BUY", "1", "100.00") for _ in range(5)]
        assert (await cash(api, buyer))["held"] == D(500)
        results = await asyncio.gather(*(replace(api, buyer, b["id"], quantity="3") for b in bids))
        ok = [r for r in results if not r["errors"]]
        refused = [r for r in results if r["errors"]]
        assert len(ok) == 2, results
        assert {e["code"] for r in refused for e in r["errors"]} == {"INSUFFICIENT_BUYING_POWER"}
        assert await cash(api, buyer) == {"total": D(1000), "available": D(100), "held": D(900)}
        found = [await get_order(api, buyer, b["id"]) for b in bids]
        quantities = sorted(o["quantity"] for o in found if o is not None)
        assert quantities == ["1", "1", "1", "3", "3"]
    await ledger_clean(stack_services)


async def test_a_partly_filled_order_is_replaced_for_its_remaining_quantity(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("RP")
    await list_asset(stack_services, sym, "50.00")
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "10")
        buyer, _ = await trader(api, "1000")
        ask = await rest(api, seller, sym, "SELL", "10", "50.00")
        await placed(
            api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="4",
            price="50.00", timeInForce="IOC",
        )  # fmt: skip
        await wait_order(api, seller, ask["id"], {"PARTIALLY_FILLED"})
        assert await shares(stack_services, seller_id, sym) == (D(6), D(6))

        too_small = await replace(api, seller, ask["id"], quantity="4")
        assert [e["code"] for e in too_small["errors"]] == ["INVALID_QUANTITY"]
        async with order_updates(api, seller) as conn:
            now = await replaced(api, seller, ask["id"], quantity="7", price="51.00")
            seen = await updates_until(conn, ask["id"], {"REPLACED"})
        assert (now["quantity"], now["filledQuantity"], now["remainingQuantity"]) == (
            "7", "4", "3",
        )  # fmt: skip
        assert (now["status"], now["price"]) == ("PARTIALLY_FILLED", "51")
        event = seen[-1]
        assert event["order"]["remainingQuantity"] == "3"
        assert int(event["cursor"]) > 0
        # 6 shares are left; 3 stay reserved for the order, 3 are free again.
        assert await shares(stack_services, seller_id, sym) == (D(6), D(3))
    await ledger_clean(stack_services)


async def test_a_replace_racing_a_fill_either_happens_or_changes_nothing(
    stack: Stack, stack_services: Services
) -> None:
    """A resting sell of 5 is replaced down to 4 while a buy of 5 arrives. Either the replace
    reached the exchange first (the order sells 4) or the fill did (the order sold 5 and the
    replace is NOT_CANCELLABLE, the order unchanged); never anything in between, and nothing is
    left held. Then, once it is filled for certain, a replace is NOT_CANCELLABLE."""
    outcomes: set[str] = set()
    async with stack.client() as api:
        for _ in range(6):
            sym = symbol("RF")
            await list_asset(stack_services, sym, "50.00")
            seller, seller_id = await trader(api)
            await grant_shares(stack_services, seller_id, sym, "5")
            buyer, _ = await trader(api, "1000")
            ask = await rest(api, seller, sym, "SELL", "5", "50.00")
            result, _bid = await asyncio.gather(
                replace(api, seller, ask["id"], quantity="4"),
                placed(
                    api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT",
                    quantity="5", price="50.00", timeInForce="IOC",
                ),
            )  # fmt: skip
            done = await wait_order(api, seller, ask["id"], FINAL)
            assert done["status"] == "EXECUTED", done
            if result["errors"]:
                assert [e["code"] for e in result["errors"]] == ["NOT_CANCELLABLE"], result
                assert (done["quantity"], done["filledQuantity"]) == ("5", "5")
                outcomes.add("filled first")
            else:
                assert (done["quantity"], done["filledQuantity"]) == ("4", "4")
                outcomes.add("replaced first")
            total = D(5) - D(done["filledQuantity"])
            assert await shares(stack_services, seller_id, sym) == (total, D(0))
            again = await replace(api, seller, ask["id"], quantity="3")
            assert [e["code"] for e in again["errors"]] == ["NOT_CANCELLABLE"]
            after = await get_order(api, seller, ask["id"])
            assert after is not None
            assert after["quantity"] == done["quantity"]
    assert outcomes  # which ones happened depends on timing; each is checked above
    await ledger_clean(stack_services)


async def test_a_replace_the_shard_cannot_place_gives_back_exactly_what_it_reserved(
    stack: Stack, stack_services: Services
) -> None:
    """The rare crash path: the order is open in PostgreSQL but its NEW_ORDER has not reached
    the shard yet (the relay resends it later), so the shard answers REPLACE_REJECTED with
    nothing live. The request's extra reservation is given back to the cent, the order's own
    hold stays, and the answer is NOT_CANCELLABLE."""
    sym = symbol("RX")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        buyer, _ = await trader(api, "1000")
        bid = await rest(api, buyer, sym, "BUY", "2", "100.00")
        assert (await cash(api, buyer))["held"] == D(200)
        # The replace's transaction as the API runs it (hold grown, request recorded, REPLACE
        # in the outbox), with the send lost; then the shard's answer for an unknown order.
        orders = stack_services.orders
        async with stack_services.sessionmaker() as s, s.begin():
            order = await s.get(Order, uuid.UUID(bid["id"]), with_for_update=True)
            assert order is not None
            _, replacement = await orders._replace_in(s, order, ReplaceOrderRequest(quantity="5"))
        assert (await cash(api, buyer))["held"] == D(500)
        event = {
            "event": "REPLACE_REJECTED", "input_id": "0-1", "idx": 0, "asset_id": sym,
            "order_id": bid["id"], "user_id": None, "replace_id": str(replacement.id),
            "reason": "UNKNOWN_ORDER", "remaining": 0, "price": None, "ts": 1,
        }  # fmt: skip
        stream = events_key(stack.prefix, shard_for(sym, stack.shards))
        await stack_services.redis.xadd(stream, {EVENT_FIELD: dumps(event)})
        await eventually(
            lambda: cash(api, buyer), lambda c: c["held"] == D(200), what="the 300 given back"
        )
        with_error = await replace(api, buyer, bid["id"], quantity="2")
        assert with_error["errors"] == []  # nothing pending any more: a new replace works
    async with stack_services.sessionmaker() as s:
        row = await s.get(OrderReplacement, replacement.id)
        assert row is not None
        assert (row.status, row.reason) == ("REJECTED", "UNKNOWN_ORDER")
    await ledger_clean(stack_services)
