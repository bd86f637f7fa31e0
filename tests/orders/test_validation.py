"""placeOrder refuses bad input with exact codes, places nothing, holds nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.orders.conftest import symbol
from tests.orders.helpers import ORDERS, cash, list_asset, place, placed, trader
from tests.support.server import Api


@pytest.fixture(scope="module")
async def assets(settings: Any) -> dict[str, str]:
    from models.services import open_services

    names = {"frac": symbol("VF"), "whole": symbol("VW"), "halted": symbol("VH")}
    async with open_services(settings, settings.database_url, settings.redis_url) as services:
        await list_asset(services, names["frac"], "10.00")
        await list_asset(services, names["whole"], "10.00", fractionable=False)
        await list_asset(services, names["halted"], "10.00", tradable=False)
    return names


# fmt: off
CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("unknown asset", {"assetId": "NOPE9"}, "UNKNOWN_ASSET", "assetId"),
    ("halted", {"asset": "halted"}, "ASSET_NOT_TRADABLE", "assetId"),
    ("both sizes", {"notional": "5", "orderSubType": "MARKET"}, "INVALID_QUANTITY", "quantity"),
    ("no size", {"quantity": None}, "INVALID_QUANTITY", "quantity"),
    ("notional limit", {"quantity": None, "notional": "5"}, "INVALID_QUANTITY", "notional"),
    ("zero", {"quantity": "0"}, "INVALID_QUANTITY", "quantity"),
    ("negative", {"quantity": "-1"}, "INVALID_QUANTITY", "quantity"),
    ("words", {"quantity": "ten"}, "INVALID_QUANTITY", "quantity"),
    ("too precise", {"quantity": "0.0000001"}, "INVALID_QUANTITY", "quantity"),
    ("fraction of whole", {"asset": "whole", "quantity": "0.5"}, "INVALID_QUANTITY", "quantity"),
    ("huge", {"quantity": "1e12"}, "INVALID_QUANTITY", "quantity"),
    ("arabic-indic digits", {"quantity": "\u0661\u0662"}, "INVALID_QUANTITY", "quantity"),
    ("fullwidth digits", {"quantity": "\uff11"}, "INVALID_QUANTITY", "quantity"),
    ("exponent overflow", {"price": "1e400"}, "INVALID_PRICE", "price"),
    ("limit without price", {"price": None}, "INVALID_PRICE", "price"),
    ("market with price", {"orderSubType": "MARKET"}, "INVALID_PRICE", "price"),
    ("off tick", {"price": "9.995"}, "INVALID_PRICE", "price"),
    ("far from market", {"price": "100.00"}, "INVALID_PRICE", "price"),
    ("stop without stop", {"orderSubType": "STOP_LIMIT"}, "INVALID_PRICE", "stopPrice"),
    ("limit with stop", {"stopPrice": "9.00"}, "INVALID_PRICE", "stopPrice"),
    (
        "fok notional",
        {"quantity": None, "notional": "5", "orderSubType": "MARKET", "price": None,
         "timeInForce": "FOK"},
        "INVALID_QUANTITY",
        "notional",
    ),
    ("bad client id", {"clientOrderId": "has spaces"}, "INVALID_INPUT", "clientOrderId"),
]
# fmt: on


@pytest.mark.parametrize(("name", "change", "code", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_orders_are_errors(
    api: Api, assets: dict[str, str], name: str, change: dict[str, Any], code: str,
    field: str | None,
) -> None:  # fmt: skip
    token, _ = await trader(api, "100")
    fields: dict[str, Any] = {
        "assetId": assets["frac"], "orderType": "BUY", "orderSubType": "LIMIT",
        "quantity": "1", "price": "10.00",
    }  # fmt: skip
    change = dict(change)
    if "asset" in change:
        fields["assetId"] = assets[change.pop("asset")]
    fields.update(change)
    fields = {k: v for k, v in fields.items() if v is not None}
    result = await place(api, token, **fields)
    assert result["order"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, field)], result
    assert (await api.gql(ORDERS, {}, token))["data"]["orders"]["edges"] == []
    assert await cash(api, token) == {"total": Decimal(100), "available": Decimal(100), "held": 0}


async def test_client_order_id_is_unique_per_user(api: Api, assets: dict[str, str]) -> None:
    fields = {
        "assetId": assets["frac"], "orderType": "BUY", "orderSubType": "LIMIT",
        "quantity": "1", "price": "9.00", "clientOrderId": "my-order-1",
    }  # fmt: skip
    token, _ = await trader(api, "100")
    first = await placed(api, token, **fields)
    assert first["clientOrderId"] == "my-order-1"
    again = await place(api, token, **fields)
    assert [e["code"] for e in again["errors"]] == ["DUPLICATE_CLIENT_ORDER_ID"]
    assert await cash(api, token) == {
        "total": Decimal(100), "available": Decimal(91), "held": Decimal(9)
    }  # fmt: skip
    other, _ = await trader(api, "100")  # another user may use the same id
    assert (await placed(api, other, **fields))["clientOrderId"] == "my-order-1"


async def test_orders_need_a_signed_in_user(api: Api, assets: dict[str, str]) -> None:
    body = await api.gql(ORDERS, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
