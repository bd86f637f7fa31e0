"""Trailing stops end to end (issue 14 item 4): GraphQL against the platform's real processes.

The stop follows the market in the engine (from its trades and reference prices) and
``Order.stopPrice`` shows where it is now; after a rise, a fall of the trail triggers it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
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
    wait_order,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
FIELDS = ORDER_FIELDS + " trailPercent trailAmount"
PLACE = f"""mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{
  order {{ {FIELDS} }} errors {{ field code message }} }} }}"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {FIELDS} }} }}"


async def place(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = await api.gql(PLACE, {"input": fields}, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["placeOrder"]
    return result


async def trailing(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    result = await place(api, token, orderSubType="TRAILING_STOP", timeInForce="GTC", **fields)
    assert result["errors"] == [], result
    order: dict[str, Any] = result["order"]
    return order


async def get_order(api: Api, token: str, order_id: str) -> dict[str, Any] | None:
    body = await api.gql(ORDER, {"id": order_id}, token)
    found: dict[str, Any] | None = body["data"]["order"]
    return found


def stop_at(expected: str, order: dict[str, Any] | None) -> bool:
    return order is not None and order["stopPrice"] == expected


async def test_a_trailing_sell_follows_the_rise_and_triggers_on_a_fall_of_the_trail(
    stack: Stack, stack_services: Services
) -> None:
    """Listed at 100, a sell trailing by 5: stop 95. The price rises to 110 (stop 105), then
    falls to 104: the stop triggers and sells at the bid of 104. It never triggered on the
    way up, and the stop never went back down."""
    sym = symbol("TS")
    await list_asset(stack_services, sym, "100.00")
    asset = await stack_services.assets.get(sym)
    assert asset is not None
    async with stack.client() as api:
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "3")
        buyer, _ = await trader(api, "10000")
        async with order_updates(api, seller) as conn:
            stop = await trailing(
                api, seller, assetId=sym, orderType="SELL", quantity="3", trailAmount="5"
            )
            assert (stop["stopPrice"], stop["trailAmount"]) == ("95", "5")
            await updates_until(conn, stop["id"], {"ACCEPTED"})
            for price, expected in (("104.00", "99"), ("110.00", "105"), ("107.00", "105")):
                await stack_services.exchange.reference_prices([(asset, D(price))])
                await eventually(
                    lambda: get_order(api, seller, stop["id"]),
                    partial(stop_at, expected),
                    what=f"the stop at {expected} after {price}",
                )
            waiting = await get_order(api, seller, stop["id"])
            assert waiting is not None
            assert (waiting["status"], waiting["filledQuantity"]) == ("PENDING", "0")

            await placed(
                api, buyer, assetId=sym, orderType="BUY", orderSubType="LIMIT", quantity="5",
                price="104.00", timeInForce="GTC",
            )  # fmt: skip
            await stack_services.exchange.reference_prices([(asset, D("104.00"))])
            seen = await updates_until(conn, stop["id"], {"FILL"})
        events = [u["event"] for u in seen if u["order"]["id"] == stop["id"]]
        assert "TRIGGERED" in events
        done = await wait_order(api, seller, stop["id"], FINAL)
        assert done["status"] == "EXECUTED", done
        assert done["stopPrice"] == "105"
        assert [(f["quantity"], f["price"]) for f in done["fills"]] == [("3", "104")]
        assert await shares(stack_services, seller_id, sym) == (D(0), D(0))
        assert await cash(api, seller) == {"total": D(312), "available": D(312), "held": 0}


async def test_a_trailing_buy_follows_the_fall_by_a_percentage_and_holds_its_cap(
    stack: Stack, stack_services: Services
) -> None:
    """Listed at 100, a buy trailing by 2%: stop 102, hold 1 x the collar cap over it. The
    price falls to 90 (stop 91.80), then rises to 92: it triggers and buys from the ask."""
    sym = symbol("TB")
    await list_asset(stack_services, sym, "100.00")
    asset = await stack_services.assets.get(sym)
    assert asset is not None
    async with stack.client() as api:
        buyer, buyer_id = await trader(api, "1000")
        seller, seller_id = await trader(api)
        await grant_shares(stack_services, seller_id, sym, "5")
        stop = await trailing(
            api, buyer, assetId=sym, orderType="BUY", quantity="1", trailPercent="2"
        )
        assert (stop["stopPrice"], stop["trailPercent"], stop["price"]) == ("102", "2", None)
        cap = D("102") * (1 + D(asset.collar_bps) / 10_000)
        assert (await cash(api, buyer))["held"] == cap.quantize(D("0.01"))
        await stack_services.exchange.reference_prices([(asset, D("90.00"))])
        await eventually(
            lambda: get_order(api, buyer, stop["id"]),
            partial(stop_at, "91.8"),
            what="the stop down at 91.80",
        )
        await placed(
            api, seller, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="5",
            price="92.00", timeInForce="GTC",
        )  # fmt: skip
        await stack_services.exchange.reference_prices([(asset, D("92.00"))])
        done = await wait_order(api, buyer, stop["id"], FINAL)
        assert done["status"] == "EXECUTED", done
        assert [(f["quantity"], f["price"]) for f in done["fills"]] == [("1", "92")]
        assert await cash(api, buyer) == {"total": D(908), "available": D(908), "held": 0}
        assert await shares(stack_services, buyer_id, sym) == (D(1), D(0))


async def test_trailing_stops_refuse_bad_trails(stack: Stack, stack_services: Services) -> None:
    sym = symbol("TV")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "1000")
        await grant_shares(stack_services, user_id, sym, "1")
        base = {
            "assetId": sym, "orderType": "SELL", "orderSubType": "TRAILING_STOP",
            "quantity": "1",
        }  # fmt: skip
        for extra, field in (
            ({}, "trailPercent"),
            ({"trailPercent": "2", "trailAmount": "1"}, "trailPercent"),
            ({"trailPercent": "2.555"}, "trailPercent"),
            ({"trailPercent": "60"}, "trailPercent"),
            ({"trailAmount": "0.001"}, "trailAmount"),
            ({"trailAmount": "1", "stopPrice": "95"}, "stopPrice"),
        ):
            result = await place(api, token, **base, **extra)
            assert result["order"] is None
            assert [(e["code"], e["field"]) for e in result["errors"]] == [
                ("INVALID_PRICE", field)
            ], extra
        limit = await place(
            api, token, assetId=sym, orderType="SELL", orderSubType="LIMIT", quantity="1",
            price="120", trailPercent="2",
        )  # fmt: skip
        assert [e["code"] for e in limit["errors"]] == ["INVALID_PRICE"]
