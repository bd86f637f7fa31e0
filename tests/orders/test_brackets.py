"""Brackets, OCO and OTO end to end (issue 14 item 5): GraphQL against the platform's processes.

What a customer and an operator check: a bracket's exits wait, then cover exactly what the
entry filled; a take-profit fill cancels the stop and the shares are held once (never twice)
and released once; an OCO's legs share one hold, and cancelling one cancels the other; bad
terms get codes, and a refusal holds nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    CANCEL,
    FINAL,
    ORDER_FIELDS,
    cash,
    grant_shares,
    list_asset,
    order_updates,
    placed,
    shares,
    trader,
    updates_until,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
LEG = "id status quantity filledQuantity orderType orderSubType price stopPrice cancelReason"
FIELDS = ORDER_FIELDS + f" orderClass parentOrderId legs {{ {LEG} }}"
PLACE = f"""mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{
  order {{ {FIELDS} }} errors {{ field code message }} }} }}"""
REPLACE = """mutation($id: ID!, $input: ReplaceOrderInput!) { replaceOrder(id: $id, input: $input) {
  order { id } errors { field code message } } }"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {FIELDS} }} }}"


async def place(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = await api.gql(PLACE, {"input": fields}, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["placeOrder"]
    return result


async def bracket(api: Api, token: str, sym: str, **fields: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "assetId": sym,
        "orderType": "BUY",
        "orderSubType": "LIMIT",
        "quantity": "10",
        "price": "100.00",
        "timeInForce": "GTC",
        "orderClass": "BRACKET",
        "takeProfit": {"price": "110.00"},
        "stopLoss": {"stopPrice": "95.00"},
    }
    result = await place(api, token, **{**terms, **fields})
    assert result["errors"] == [], result
    order: dict[str, Any] = result["order"]
    return order


async def get_order(api: Api, token: str, order_id: str) -> dict[str, Any]:
    body = await api.gql(ORDER, {"id": order_id}, token)
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["order"]
    assert found is not None
    return found


async def wait_for(api: Api, token: str, order_id: str, check: Any, what: str) -> dict[str, Any]:
    found: dict[str, Any] = await eventually(
        lambda: get_order(api, token, order_id), check, timeout=15, what=what
    )
    return found


def legs_of(order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    tp, sl = order["legs"]
    assert (tp["orderSubType"], sl["orderSubType"]) == ("LIMIT", "STOP_LOSS")
    return tp, sl


async def ledger_clean(services: Services) -> None:
    async with services.sessionmaker() as s:
        problems = await services.ledger.check(s)
    assert not problems, problems


async def test_a_take_profit_fill_cancels_the_stop_and_releases_nothing_twice(
    stack: Stack, stack_services: Services
) -> None:
    """Buy 10 at 100 with a take-profit at 110 and a stop at 95. The exits wait (nothing is
    held for them); the entry fills: both cover 10 and the 10 shares are held once. A buyer
    at 110 takes the take-profit: the stop is cancelled (OCO), the shares are gone, every
    hold is released and the ledger balances."""
    sym = symbol("BK")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "10000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "10")
        taker, _ = await trader(api, "5000")
        async with order_updates(api, token) as conn:
            entry = await bracket(api, token, sym)
            assert (entry["orderClass"], entry["parentOrderId"]) == ("BRACKET", None)
            tp, sl = legs_of(entry)
            assert (tp["status"], sl["status"]) == ("PENDING", "PENDING")
            assert (tp["orderType"], tp["price"], sl["stopPrice"]) == ("SELL", "110", "95")
            assert await cash(api, token) == {"total": 10000, "available": 9000, "held": 1000}

            await placed(
                api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
                quantity="10", price="100.00", timeInForce="GTC",
            )  # fmt: skip
            seen = await updates_until(conn, sl["id"], {"ACTIVATED"})
            assert {u["order"]["id"] for u in seen if u["event"] == "ACTIVATED"} >= {sl["id"]}
            filled = await wait_for(
                api, token, entry["id"],
                lambda o: o["status"] == "EXECUTED" and o["legs"][1]["quantity"] == "10",
                "the entry filled and its legs active for 10",
            )  # fmt: skip
            assert [leg["quantity"] for leg in filled["legs"]] == ["10", "10"]
            assert await shares(stack_services, user_id, sym) == (D(10), D(10))  # held once
            assert await cash(api, token) == {"total": 9000, "available": 9000, "held": 0}

            await placed(
                api, taker, assetId=sym, orderType="BUY", orderSubType="LIMIT",
                quantity="10", price="110.00", timeInForce="IOC",
            )  # fmt: skip
            await updates_until(conn, sl["id"], {"CANCELLED"})
        done = await wait_for(
            api, token, entry["id"],
            lambda o: {leg["status"] for leg in o["legs"]} <= FINAL, "both legs final",
        )  # fmt: skip
        tp, sl = legs_of(done)
        assert (tp["status"], tp["filledQuantity"]) == ("EXECUTED", "10")
        assert (sl["status"], sl["cancelReason"], sl["filledQuantity"]) == ("CANCELLED", "OCO", "0")
        assert await shares(stack_services, user_id, sym) == (D(0), D(0))
        assert await cash(api, token) == {"total": 10100, "available": 10100, "held": 0}
        await ledger_clean(stack_services)


async def test_a_partial_entry_fill_activates_the_legs_in_proportion(
    stack: Stack, stack_services: Services
) -> None:
    """The entry fills 4, then 3 more: the exits cover 4, then 7, and hold exactly those
    shares (a plain sell of them is refused). The price falls to 94: the stop triggers, the
    entry's unfilled 3 are cancelled first (the position is being closed), the stop sells the
    7 at the bid and the take-profit is cancelled."""
    sym = symbol("BP")
    await list_asset(stack_services, sym, "100.00")
    asset = await stack_services.assets.get(sym)
    assert asset is not None
    async with stack.client() as api:
        token, user_id = await trader(api, "10000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "7")
        bidder, _ = await trader(api, "5000")
        entry = await bracket(api, token, sym)
        tp, sl = legs_of(entry)
        for qty, total in (("4", "4"), ("3", "7")):
            await placed(
                api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT",
                quantity=qty, price="100.00", timeInForce="GTC",
            )  # fmt: skip
            # The entry and its legs are read one after the other (the legs by their own
            # query), so one response can straddle the settlement's commit: wait for both.
            seen = await wait_for(
                api, token, entry["id"],
                lambda o, t=total: o["filledQuantity"] == t
                and [leg["quantity"] for leg in o["legs"]] == [t, t],
                f"legs active for {total}",
            )  # fmt: skip
            assert seen["status"] == "PARTIALLY_FILLED"
            assert await shares(stack_services, user_id, sym) == (D(total), D(total))
        refused = await place(
            api, token, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="1",
            price="120.00", timeInForce="GTC",
        )  # fmt: skip
        assert [e["code"] for e in refused["errors"]] == ["INSUFFICIENT_SHARES"]

        await placed(
            api, bidder, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="7",
            price="94.00", timeInForce="GTC",
        )  # fmt: skip
        await stack_services.exchange.reference_prices([(asset, D("94.00"))])
        done = await wait_for(
            api, token, entry["id"],
            lambda o: o["status"] in FINAL and {leg["status"] for leg in o["legs"]} <= FINAL,
            "the bracket closed by its stop",
        )  # fmt: skip
        assert (done["status"], done["cancelReason"], done["filledQuantity"]) == (
            "CANCELLED",
            "OCO",
            "7",
        )
        tp, sl = legs_of(done)
        assert (sl["status"], sl["filledQuantity"]) == ("EXECUTED", "7")
        assert (tp["status"], tp["cancelReason"]) == ("CANCELLED", "OCO")
        assert await shares(stack_services, user_id, sym) == (D(0), D(0))
        # 10,000 - 7 x 100 + 7 x 94, nothing left held
        assert await cash(api, token) == {"total": 9958, "available": 9958, "held": 0}
        await ledger_clean(stack_services)


async def test_an_oco_holds_the_shares_once_and_cancelling_one_leg_cancels_the_other(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("OC")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, user_id = await trader(api)
        await grant_shares(stack_services, user_id, sym, "5")
        result = await place(
            api, token, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="5",
            timeInForce="GTC", orderClass="OCO", takeProfit={"price": "110.00"},
            stopLoss={"stopPrice": "90.00"},
        )  # fmt: skip
        assert result["errors"] == [], result
        oco = result["order"]
        assert (oco["orderClass"], oco["price"]) == ("OCO", "110")
        [stop] = oco["legs"]
        assert (stop["orderSubType"], stop["stopPrice"], stop["quantity"]) == (
            "STOP_LOSS",
            "90",
            "5",
        )
        assert await shares(stack_services, user_id, sym) == (D(5), D(5))  # not 10
        await wait_for(
            api, token, stop["id"], lambda o: o["status"] == "PENDING", "the stop in the book"
        )
        body = await api.gql(CANCEL, {"id": stop["id"]}, token)
        assert body["data"]["cancelOrder"]["errors"] == [], body
        done = await wait_for(
            api, token, oco["id"], lambda o: o["status"] in FINAL, "the take-profit cancelled"
        )
        assert (done["status"], done["cancelReason"]) == ("CANCELLED", "OCO")
        [leg] = done["legs"]
        assert (leg["status"], leg["cancelReason"]) == ("CANCELLED", "USER")
        assert await shares(stack_services, user_id, sym) == (D(5), D(0))
        await ledger_clean(stack_services)


async def test_cancelling_the_entry_cancels_its_waiting_legs(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("BC")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, _ = await trader(api, "2000")
        entry = await bracket(api, token, sym, quantity="3")
        body = await api.gql(CANCEL, {"id": entry["id"]}, token)
        assert body["data"]["cancelOrder"]["errors"] == [], body
        done = await wait_for(
            api, token, entry["id"],
            lambda o: o["status"] in FINAL and {leg["status"] for leg in o["legs"]} <= FINAL,
            "the bracket cancelled",
        )  # fmt: skip
        assert (done["status"], done["cancelReason"]) == ("CANCELLED", "USER")
        assert [(leg["status"], leg["cancelReason"]) for leg in done["legs"]] == [
            ("CANCELLED", "PARENT"),
            ("CANCELLED", "PARENT"),
        ]
        assert await cash(api, token) == {"total": 2000, "available": 2000, "held": 0}


async def test_bad_brackets_get_clear_codes_and_hold_nothing(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("BV")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "2000")
        await grant_shares(stack_services, user_id, sym, "2")
        base: dict[str, Any] = {
            "assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1",
            "price": "100.00", "timeInForce": "GTC", "orderClass": "BRACKET",
            "takeProfit": {"price": "110.00"}, "stopLoss": {"stopPrice": "95.00"},
        }  # fmt: skip
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"takeProfit": {"price": "99.00"}}, "INVALID_PRICE", "takeProfit.price"),
            ({"takeProfit": {"price": "100.00"}}, "INVALID_PRICE", "takeProfit.price"),
            ({"stopLoss": {"stopPrice": "101.00"}}, "INVALID_PRICE", "stopLoss.stopPrice"),
            ({"stopLoss": {"stopPrice": "95.001"}}, "INVALID_PRICE", "stopLoss.stopPrice"),
            (
                {"stopLoss": {"stopPrice": "95.00", "price": "96.00"}},
                "INVALID_PRICE",
                "stopLoss.price",
            ),
            ({"stopLoss": None}, "INVALID_ORDER_CLASS", "stopLoss"),
            ({"orderType": "SELL"}, "INVALID_ORDER_CLASS", "orderType"),
            (
                {"orderSubType": "STOP_LOSS", "stopPrice": "99.00", "price": None},
                "INVALID_ORDER_CLASS",
                "orderSubType",
            ),
            ({"extendedHours": True}, "INVALID_ORDER_CLASS", "orderClass"),
            ({"orderClass": "SIMPLE"}, "INVALID_ORDER_CLASS", "takeProfit"),
            ({"orderClass": "OTO"}, "INVALID_ORDER_CLASS", "takeProfit"),
            (
                {"orderClass": "OCO", "orderType": "SELL", "price": None,
                 "stopLoss": {"stopPrice": "111.00"}},
                "INVALID_PRICE",
                "stopLoss.stopPrice",
            ),
            (
                {"orderClass": "OCO", "orderType": "SELL", "price": None, "quantity": "3"},
                "INSUFFICIENT_SHARES",
                "quantity",
            ),
            ({"quantity": "30"}, "INSUFFICIENT_BUYING_POWER", "quantity"),
        ]  # fmt: skip
        for change, code, field in cases:
            result = await place(api, token, **{**base, **change})
            got = [(e["code"], e["field"]) for e in result["errors"]]
            assert got == [(code, field)], (change, result["errors"])
            assert result["order"] is None
        assert await cash(api, token) == {"total": 2000, "available": 2000, "held": 0}
        assert await shares(stack_services, user_id, sym) == (D(2), D(0))

        entry = await bracket(api, token, sym, quantity="1")
        body = await api.gql(REPLACE, {"id": entry["id"], "input": {"quantity": "2"}}, token)
        errors = body["data"]["replaceOrder"]["errors"]
        assert [e["code"] for e in errors] == ["INVALID_ORDER_CLASS"], errors
        assert uuid.UUID(entry["legs"][0]["id"])
