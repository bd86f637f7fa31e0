"""placeOrder's one-round-trip statement (``models.orders.direct``): the API process plans the
next orders on the asset row its last placement read, and the statement re-checks that row and
the user's KYC under the asset's lock. What a user sees must be what the row says now: an asset
made untradable or given a coarser tick, a revoked verification, a spent balance or a reused
client order id are refused at once, with nothing held."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sqlalchemy import func, select, update

from models.assets import AssetClass, NewAsset
from models.orders import Order
from models.services import Services
from models.users import KycStatus, User
from tests.orders.conftest import symbol
from tests.orders.helpers import cash, list_asset, place, placed, trader
from tests.support.stack import Stack

D = Decimal


def _codes(result: dict[str, object]) -> list[object]:
    errors = result["errors"]
    assert isinstance(errors, list)
    return [e["code"] for e in errors]


async def test_a_changed_asset_row_is_seen_by_the_very_next_order(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("OT")
    await list_asset(stack_services, sym, "10.00")
    async with stack.client() as api:
        token, _ = await trader(api, "1000")
        buy = {"assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1"}
        # Two orders: the first reads the row, the second goes in one trip.
        for price in ("9.01", "9.02"):
            assert (await placed(api, token, **buy, price=price))["status"] == "PENDING"
        held = (await cash(api, token))["held"]
        assert held == D("18.03")

        # A coarser tick: 9.03 is off the new grid and refused as such.
        relisted = NewAsset(
            symbol=sym,
            name=f"Test {sym}",
            asset_class=AssetClass.EQUITY,
            currency="USD",
            tick_size="0.05",
            fractionable=True,
            tradable=True,
            reference_price="10.00",
            market_calendar="24x7",
        )
        await stack_services.assets.upsert_many([relisted])
        result = await place(api, token, **buy, price="9.03")
        assert _codes(result) == ["INVALID_PRICE"] or _codes(result) == ["INVALID_INPUT"], result
        assert (await placed(api, token, **buy, price="9.05"))["price"] == "9.05"

        # Untradable: refused at once.
        await stack_services.assets.upsert_many([replace(relisted, tradable=False)])
        result = await place(api, token, **buy, price="9.10")
        assert _codes(result) == ["ASSET_NOT_TRADABLE"], result
        assert (await cash(api, token))["held"] == D("27.08")


async def test_revoked_verification_spent_balance_and_reused_ids_hold_nothing(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("OU")
    await list_asset(stack_services, sym, "50.00")
    async with stack.client() as api:
        token, user_id = await trader(api, "100")
        buy = {"assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1"}
        await placed(api, token, **buy, price="40.00")
        await placed(api, token, **buy, price="41.00", clientOrderId="mine-1")
        assert (await cash(api, token))["held"] == D("81.00")

        # The balance left (19.00) does not cover 30.00: refused, nothing more held.
        result = await place(api, token, **buy, price="30.00")
        assert _codes(result) == ["INSUFFICIENT_BUYING_POWER"], result
        # The same client order id again: refused, nothing more held.
        small = {**buy, "quantity": "0.1", "price": "30.00"}
        result = await place(api, token, **small, clientOrderId="mine-1")
        assert _codes(result) == ["DUPLICATE_CLIENT_ORDER_ID"], result
        assert (await cash(api, token))["held"] == D("81.00")
        assert (await placed(api, token, **small))["status"] == "PENDING"

        # Verification withdrawn (a compliance review): the next order is refused.
        async with stack_services.sessionmaker.begin() as s:
            await s.execute(
                update(User).where(User.id == user_id).values(kyc_status=KycStatus.NEEDS_REVIEW)
            )
        result = await place(api, token, **small)
        assert _codes(result) == ["KYC_REQUIRED"], result
        assert (await cash(api, token))["held"] == D("84.00")
        async with stack_services.sessionmaker() as s:
            count = await s.scalar(select(func.count()).where(Order.user_id == user_id))
        assert count == 3
