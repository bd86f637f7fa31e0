"""Contingent orders, the pure rules: brackets, OTO and OCO (issue 14 item 5, API.md section 5).

``placeOrder`` with ``orderClass``:

- **BRACKET**: a BUY entry (LIMIT, or MARKET: which the broker sends as a LIMIT IOC at the collar
  cap, as any market buy) plus a take-profit LIMIT sell above it and a stop-loss sell below it
  (STOP_LOSS, or STOP_LIMIT when ``stopLoss.price`` is given). The exits wait in the engine and
  become active as the entry fills, for what it filled (a partial fill of 3 makes exits of 3);
  they are one-cancels-other: they sell the same shares, so a fill of one shrinks the other by
  as much and a leg that ends takes the other. An exit that trades (or a stop that triggers)
  ends the entry's unfilled remainder: the position is being closed. Cancelling the entry
  cancels the legs; cancelling a leg cancels the other leg and the entry's remainder.
- **OTO**: the same with one exit (``takeProfit`` or ``stopLoss``).
- **OCO**: two exits of one position, both active at once: the order itself is the take-profit
  LIMIT (``orderSubType: LIMIT``, ``takeProfit.price`` its limit) and the stop-loss its leg. A
  SELL's stop is below its take-profit, a BUY's above.

Holds never count the legs twice: a bracket's exits hold the shares its entry's fills bring,
ONE hold for both legs (``legs_hold_id``, opened by the settlement with the entry's first fill,
in the same transaction that credits the shares); an OCO holds its quantity once for both
(shares for a sell; for a buy, cash for the dearer of the two legs' limits).

Refused with ``INVALID_ORDER_CLASS``: a class without its legs (or legs without a class), a
SELL entry for a bracket / OTO (no short selling: its exits would buy back), an entry that is
not LIMIT or MARKET, notional amounts, trailing stops and extended hours with a contingent
class. Prices that do not fit (a buy bracket's take-profit at or below its entry, its stop at
or above it; an OCO's stop on the wrong side of its take-profit) are ``INVALID_PRICE`` on the
leg's field (``takeProfit.price``, ``stopLoss.stopPrice``, ``stopLoss.price``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from bourse.money import round_cash
from matching.codec import to_fixed
from matching.wire import LegSpec, leg
from models.assets import Asset
from models.errors import DomainError, ErrorCode
from models.exchange import scales
from models.orders.rules import INPUT_DECIMALS, OrderPlan, OrdersConfig, PlaceOrderRequest
from models.orders.rules import plan_order as plan_simple
from models.orders.tables import OrderClass, OrderSubType, Side, TimeInForce
from models.validation import parse_decimal

LEGS_HOLD_NAMESPACE = uuid.UUID("6f1d9c2e-3b7a-4e55-9a0c-b2d4c8e1f377")


def legs_hold_id(entry_id: uuid.UUID) -> uuid.UUID:
    """The one hold a bracket's (or OTO's) exits share: derived from the entry's id, so the
    settlement finds it from the entry's fill alone."""
    return uuid.uuid5(LEGS_HOLD_NAMESPACE, str(entry_id))


@dataclass(frozen=True, slots=True)
class TakeProfit:
    price: str | None


@dataclass(frozen=True, slots=True)
class StopLoss:
    stop_price: str | None
    price: str | None = None  # a limit: the stop-loss is a STOP_LIMIT


@dataclass(frozen=True, slots=True)
class LegPlan:
    """One exit: what the order row shows (the user's terms) and what the engine gets."""

    role: str  # TAKE_PROFIT | STOP_LOSS
    side: Side
    sub_type: OrderSubType
    price: Decimal | None
    stop_price: Decimal | None
    engine_type: str
    engine_price: Decimal | None
    engine_stop: Decimal | None


@dataclass(frozen=True, slots=True)
class LinkedPlan:
    order_class: OrderClass
    entry: OrderPlan  # the order itself (an OCO's: the take-profit), its hold for the group
    legs: tuple[LegPlan, ...]
    leg_tif: TimeInForce


def _price(raw: str | None, field: str, what: str) -> Decimal:
    if raw is None:
        raise DomainError.one(ErrorCode.INVALID_PRICE, f"{what} is required.", field)
    value = parse_decimal(
        raw, field=field, code=ErrorCode.INVALID_PRICE, what=what, max_decimals=INPUT_DECIMALS
    )
    assert value is not None
    return value


def _check_price(
    value: Decimal, field: str, asset: Asset, reference: Decimal, config: OrdersConfig
) -> None:
    if value % asset.tick_size != 0:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            f"Prices of {asset.symbol} are multiples of {asset.tick_size.normalize()}.",
            field,
        )
    band = Decimal(config.price_band_bps) / Decimal(10_000)
    if abs(value - reference) > reference * band:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            f"The price is more than {config.price_band_bps / 100:g}% away from the market "
            f"({reference.normalize()}).",
            field,
        )


def _class_error(message: str, field: str = "orderClass") -> DomainError:
    return DomainError.one(ErrorCode.INVALID_ORDER_CLASS, message, field)


def _stop_leg(
    side: Side, sl: StopLoss, asset: Asset, reference: Decimal, config: OrdersConfig
) -> LegPlan:
    stop = _price(sl.stop_price, "stopLoss.stopPrice", "The stop-loss's stop price")
    _check_price(stop, "stopLoss.stopPrice", asset, reference, config)
    limit = None
    if sl.price is not None:
        limit = _price(sl.price, "stopLoss.price", "The stop-loss's limit price")
        _check_price(limit, "stopLoss.price", asset, reference, config)
        if (limit > stop) if side is Side.SELL else (limit < stop):
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                "A stop-loss's limit is at or "
                + ("below" if side is Side.SELL else "above")
                + " its stop price.",
                "stopLoss.price",
            )
    sub = OrderSubType.STOP_LOSS if limit is None else OrderSubType.STOP_LIMIT
    engine_type, engine_price = str(sub), limit
    if side is Side.BUY and limit is None:  # a buy stop's hold needs a cap (plan_order's rule)
        collar = Decimal(asset.collar_bps) / Decimal(10_000)
        step = asset.tick_size
        engine_price = (stop * (1 + collar) / step).to_integral_value(rounding=ROUND_DOWN) * step
        engine_type = str(OrderSubType.STOP_LIMIT)
    return LegPlan("STOP_LOSS", side, sub, limit, stop, engine_type, engine_price, stop)


def _take_profit_leg(
    side: Side, tp: TakeProfit, asset: Asset, reference: Decimal, config: OrdersConfig
) -> LegPlan:
    price = _price(tp.price, "takeProfit.price", "The take-profit's price")
    _check_price(price, "takeProfit.price", asset, reference, config)
    return LegPlan(
        "TAKE_PROFIT", side, OrderSubType.LIMIT, price, None, str(OrderSubType.LIMIT), price, None
    )


def plan_linked(
    req: PlaceOrderRequest,
    take_profit: TakeProfit | None,
    stop_loss: StopLoss | None,
    asset: Asset,
    reference: Decimal,
    config: OrdersConfig,
) -> LinkedPlan:
    """Validate a contingent order (pure): the order itself by ``plan_order``'s rules, then its
    legs; see the module's docstring."""
    kind = req.order_class
    if kind is OrderClass.SIMPLE:
        raise _class_error(
            "takeProfit and stopLoss go with orderClass BRACKET, OCO or OTO.",
            "takeProfit" if take_profit is not None else "stopLoss",
        )
    if req.extended_hours:
        raise _class_error("Bracket, OCO and OTO orders trade in the regular session only.")
    if req.notional is not None:
        raise _class_error("Bracket, OCO and OTO orders are by quantity, not notional.")
    if req.trail_percent is not None or req.trail_amount is not None:
        raise _class_error("Trailing stops cannot be part of a bracket, OCO or OTO order.")
    if kind is OrderClass.OCO:
        return _plan_oco(req, take_profit, stop_loss, asset, reference, config)
    if req.side is not Side.BUY:
        raise _class_error(
            f"A {kind} entry buys; its exits sell the shares it bought (no short selling).",
            "orderType",
        )
    if req.sub_type not in (OrderSubType.LIMIT, OrderSubType.MARKET):
        raise _class_error(f"A {kind} entry is a LIMIT or MARKET order.", "orderSubType")
    if kind is OrderClass.BRACKET and (take_profit is None or stop_loss is None):
        raise _class_error(
            "A bracket needs both takeProfit and stopLoss.",
            "takeProfit" if take_profit is None else "stopLoss",
        )
    if kind is OrderClass.OTO and (take_profit is None) == (stop_loss is None):
        raise _class_error(
            "An OTO order takes exactly one of takeProfit and stopLoss.", "takeProfit"
        )
    entry = plan_simple(req, asset, reference, config)
    # The engine's entry price bounds the exits: a market entry may pay up to its collar cap.
    assert entry.engine_price is not None
    bound = entry.engine_price
    legs: list[LegPlan] = []
    if take_profit is not None:
        tp = _take_profit_leg(Side.SELL, take_profit, asset, reference, config)
        assert tp.price is not None
        if tp.price <= bound:
            what = "its limit" if req.sub_type is OrderSubType.LIMIT else "the most it may pay"
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"The take-profit must be above the entry's price ({what}: {bound.normalize()}).",
                "takeProfit.price",
            )
        legs.append(tp)
    if stop_loss is not None:
        sl = _stop_leg(Side.SELL, stop_loss, asset, reference, config)
        assert sl.stop_price is not None
        limit = req.price is not None and entry.price is not None
        below = entry.price if limit and entry.price is not None else reference
        if sl.stop_price >= below:
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                "The stop-loss must be below the entry's price "
                f"({'its limit' if limit else 'the market'}: {below.normalize()}).",
                "stopLoss.stopPrice",
            )
        legs.append(sl)
    tif = req.time_in_force
    leg_tif = tif if tif in (TimeInForce.GTC, TimeInForce.DAY) else TimeInForce.GTC
    return LinkedPlan(kind, entry, tuple(legs), leg_tif)


def _plan_oco(
    req: PlaceOrderRequest,
    take_profit: TakeProfit | None,
    stop_loss: StopLoss | None,
    asset: Asset,
    reference: Decimal,
    config: OrdersConfig,
) -> LinkedPlan:
    if req.sub_type is not OrderSubType.LIMIT:
        raise _class_error("An OCO order is a LIMIT (its take-profit) and a stop.", "orderSubType")
    if take_profit is None or stop_loss is None:
        raise _class_error(
            "An OCO order needs both takeProfit and stopLoss.",
            "takeProfit" if take_profit is None else "stopLoss",
        )
    if req.time_in_force not in (TimeInForce.GTC, TimeInForce.DAY):
        raise _class_error("An OCO order rests: GTC or DAY.", "timeInForce")
    tp_price = _price(take_profit.price, "takeProfit.price", "The take-profit's price")
    if req.price is not None and req.price != take_profit.price:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            "An OCO's limit is its take-profit price: give it once (takeProfit.price).",
            "price",
        )
    entry = plan_simple(replace(req, price=format(tp_price, "f")), asset, reference, config)
    side = req.side
    sl = _stop_leg(side, stop_loss, asset, reference, config)
    assert sl.stop_price is not None
    if (sl.stop_price >= tp_price) if side is Side.SELL else (sl.stop_price <= tp_price):
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            "An OCO "
            + ("sell's stop is below" if side is Side.SELL else "buy's stop is above")
            + f" its take-profit ({tp_price.normalize()}).",
            "stopLoss.stopPrice",
        )
    if side is Side.BUY:  # one hold for both: the dearer of the two limits
        assert entry.quantity is not None
        assert sl.engine_price is not None
        worst = max(tp_price, sl.engine_price)
        entry = replace(
            entry,
            hold_amount=round_cash(entry.quantity * worst, asset.currency, ROUND_CEILING),
        )
    return LinkedPlan(OrderClass.OCO, entry, (sl,), req.time_in_force)


def leg_specs(asset: Asset, plan: LinkedPlan, leg_ids: list[uuid.UUID]) -> list[LegSpec]:
    """The NEW_ORDER's ``legs`` (fixed point, the asset's scales)."""
    s = scales(asset)
    out: list[LegSpec] = []
    for lid, lp in zip(leg_ids, plan.legs, strict=True):
        out.append(
            leg(
                str(lid),
                lp.engine_type,
                str(plan.leg_tif),
                price=None if lp.engine_price is None else to_fixed(lp.engine_price, s.price_scale),
                stop_price=None
                if lp.engine_stop is None
                else to_fixed(lp.engine_stop, s.price_scale),
            )
        )
    return out
