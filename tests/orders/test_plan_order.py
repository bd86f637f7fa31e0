"""The pure order planning (``models.orders.plan_order``): what a request becomes before any
I/O: the stored order, its hold, and the command the engine sees."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from models.assets import Asset, AssetClass
from models.errors import DomainError
from models.ledger import AccountKind
from models.orders import (
    OrderPlan,
    OrdersConfig,
    OrderSubType,
    PlaceOrderRequest,
    Side,
    TimeInForce,
    plan_order,
)

CONFIG = OrdersConfig()


def asset(*, collar_bps: int = 500, fractionable: bool = True) -> Asset:
    return Asset(
        symbol="PLAN",
        name="Plan Inc.",
        asset_class=AssetClass.EQUITY,
        currency="USD",
        tick_size=Decimal("0.01"),
        quantity_increment=Decimal("0.000001") if fractionable else Decimal(1),
        fractionable=fractionable,
        tradable=True,
        market_calendar="XNYS",
        reference_price=Decimal("100.00"),
        collar_bps=collar_bps,
    )


def plan(reference: str = "100.00", a: Asset | None = None, **fields: Any) -> OrderPlan:
    req = PlaceOrderRequest(asset_id="PLAN", **fields)
    return plan_order(req, a or asset(), Decimal(reference), CONFIG)


def test_a_market_buy_by_quantity_goes_as_a_limit_ioc_at_the_collar_cap() -> None:
    p = plan(side=Side.BUY, sub_type=OrderSubType.MARKET, quantity="3")
    # reference 100.00 x (1 + 5%) = 105.00: the worst price it may trade at.
    assert (p.engine_type, p.engine_tif, p.engine_price) == ("LIMIT", "IOC", Decimal("105.00"))
    assert (p.hold_kind, p.hold_asset, p.hold_amount) == (AccountKind.CASH, "USD", Decimal(315))
    assert (p.quantity, p.price, p.notional) == (Decimal(3), None, None)


def test_the_collar_cap_is_rounded_down_to_the_tick_and_the_hold_up_to_the_cent() -> None:
    # 33.33 x 1.05 = 34.9965 → 34.99 (never above the collar); 0.5 x 34.99 = 17.495 → 17.50.
    p = plan("33.33", side=Side.BUY, sub_type=OrderSubType.MARKET, quantity="0.5")
    assert p.engine_price == Decimal("34.99")
    assert p.hold_amount == Decimal("17.50")


def test_a_fill_or_kill_market_buy_stays_fill_or_kill() -> None:
    p = plan(
        side=Side.BUY, sub_type=OrderSubType.MARKET, quantity="1", time_in_force=TimeInForce.FOK
    )
    assert (p.engine_type, p.engine_tif) == ("LIMIT", "FOK")


def test_a_stop_loss_buy_goes_as_a_stop_limit_capped_over_its_stop() -> None:
    p = plan(side=Side.BUY, sub_type=OrderSubType.STOP_LOSS, quantity="2", stop_price="110.00")
    # 110.00 x 1.05 = 115.50: the hold covers the worst fill once triggered.
    assert (p.engine_type, p.engine_stop, p.engine_price) == (
        "STOP_LIMIT",
        Decimal("110.00"),
        Decimal("115.50"),
    )
    assert p.hold_amount == Decimal("231.00")
    assert (p.price, p.stop_price) == (None, Decimal("110.00"))  # the order stays a STOP_LOSS


def test_a_stop_loss_sell_holds_its_shares_and_goes_unchanged() -> None:
    p = plan(side=Side.SELL, sub_type=OrderSubType.STOP_LOSS, quantity="2", stop_price="90.00")
    assert (p.engine_type, p.engine_price, p.engine_stop) == ("STOP_LOSS", None, Decimal("90.00"))
    assert (p.hold_kind, p.hold_asset, p.hold_amount) == (AccountKind.SHARES, "PLAN", Decimal(2))


def test_a_market_buy_by_notional_holds_exactly_the_notional() -> None:
    p = plan(side=Side.BUY, sub_type=OrderSubType.MARKET, notional="250.00")
    assert (p.engine_type, p.engine_price, p.quantity) == ("MARKET", None, None)
    assert (p.notional, p.hold_amount) == (Decimal("250.00"), Decimal("250.00"))


def test_a_notional_sell_becomes_a_quantity_rounded_down_to_the_increment() -> None:
    p = plan("30.00", side=Side.SELL, sub_type=OrderSubType.MARKET, notional="100")
    # 100 / 30 = 3.3333333... → 3.333333 shares (never more than asked for).
    assert (p.quantity, p.notional) == (Decimal("3.333333"), None)
    assert (p.hold_kind, p.hold_amount) == (AccountKind.SHARES, Decimal("3.333333"))
    whole = plan("30.00", asset(fractionable=False), side=Side.SELL,
                 sub_type=OrderSubType.MARKET, notional="100")  # fmt: skip
    assert whole.quantity == Decimal(3)


def test_a_notional_sell_worth_less_than_one_increment_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        plan("30.00", asset(fractionable=False), side=Side.SELL,
             sub_type=OrderSubType.MARKET, notional="10")  # fmt: skip
    assert [(p.code, p.field) for p in caught.value.problems] == [("INVALID_QUANTITY", "notional")]


def test_a_limit_buy_holds_quantity_times_limit_rounded_up() -> None:
    p = plan(side=Side.BUY, sub_type=OrderSubType.LIMIT, quantity="0.333333", price="99.99")
    # 0.333333 x 99.99 = 33.32996667 → 33.33
    assert (p.engine_type, p.engine_price, p.hold_amount) == (
        "LIMIT",
        Decimal("99.99"),
        Decimal("33.33"),
    )


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"quantity": "ten"}, "INVALID_QUANTITY", "quantity"),
        ({"quantity": "0"}, "INVALID_QUANTITY", "quantity"),
        ({"quantity": "1", "price": "-1"}, "INVALID_PRICE", "price"),
        ({"quantity": "1", "price": "NaN"}, "INVALID_PRICE", "price"),
        ({"quantity": "1", "price": "100.00", "stop_price": "x"}, "INVALID_PRICE", "stopPrice"),
        # Issue 17: out-of-range exponents and non-ASCII digits are input errors.
        ({"quantity": "1", "price": "1e400"}, "INVALID_PRICE", "price"),
        ({"quantity": "1", "price": "1e-400"}, "INVALID_PRICE", "price"),
        ({"quantity": "\u0661\u0662"}, "INVALID_QUANTITY", "quantity"),
        ({"quantity": "\uff11"}, "INVALID_QUANTITY", "quantity"),
        ({"quantity": "1", "price": "\ud800"}, "INVALID_PRICE", "price"),
    ],
)
def test_typed_numbers_keep_their_codes_and_fields(
    fields: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        plan(side=Side.BUY, sub_type=OrderSubType.LIMIT, **{"price": "100.00", **fields})
    assert [(p.code, p.field) for p in caught.value.problems] == [(code, field)]
