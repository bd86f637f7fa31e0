"""The pure rules of placing an order: a request becomes an order, its hold and its engine
command (``plan_order``, no I/O).

Rules where the exchange needs help from the broker:

- A buy's hold must cover every fill, so a buy never reaches the engine as an order that could
  trade at an unknown price: a MARKET buy by quantity goes as a LIMIT IOC (FOK if FOK) at the
  collar cap ``reference x (1 + collar)`` rounded down to the tick (``reference``: the anchor
  price of ``models.quotes.anchor_price``, as the engine's collar), and its hold is quantity x
  that cap; a STOP_LOSS buy goes as a STOP_LIMIT with the same cap over its stop price. A MARKET
  buy by notional holds exactly the notional (the engine spends at most that much).
- A TRAILING_STOP (``trail_percent`` or ``trail_amount``) goes to the engine as a trailing
  stop whose first stop trails ``reference``; the engine moves it after that (its mark). A buy
  carries a limit cap ``stop x (1 + collar)`` (as a STOP_LOSS buy), which the engine lowers as
  the stop follows the market down; its hold is quantity x the first cap.
- A sell by notional (market only) becomes a quantity: notional / reference, rounded down to the
  asset's quantity increment.
- Cash of a fill is price x quantity rounded DOWN to the currency's minor unit (ROUND_DOWN): the
  buyer pays and the seller receives the same amount, and the sum of a buy's fills can never
  exceed its hold (quantity x limit, rounded UP).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from bourse.clock import now_ns
from bourse.money import MINOR_UNITS, plain, round_cash
from matching.codec import to_fixed
from matching.wire import LegSpec, NewOrderCommand, ReplaceCommand, new_order
from matching.wire import replace as replace_cmd
from models.assets import Asset
from models.errors import DomainError, ErrorCode, Problem
from models.exchange import scales
from models.ledger import ZERO, AccountKind
from models.orders.tables import Order, OrderClass, OrderSubType, Side, TimeInForce
from models.validation import parse_decimal

MAX_QUANTITY = Decimal(10) ** 9
MAX_NOTIONAL = Decimal(10) ** 9
CLIENT_ORDER_ID_RE = re.compile(r"[\x21-\x7e]{1,64}\Z")
# Decimals a typed number may have before the asset's grid decides (the AMOUNT columns' scale).
INPUT_DECIMALS = 18


@dataclass(frozen=True, slots=True)
class PlaceOrderRequest:
    asset_id: str
    side: Side
    sub_type: OrderSubType
    time_in_force: TimeInForce = TimeInForce.GTC
    quantity: str | None = None
    notional: str | None = None
    price: str | None = None
    stop_price: str | None = None
    client_order_id: str | None = None
    extended_hours: bool = False  # LIMIT only: may trade pre-market and after-hours
    trail_percent: str | None = None
    trail_amount: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE  # BRACKET / OCO / OTO: models.orders.linked


@dataclass(frozen=True)
class OrdersConfig:
    price_band_bps: int = 5000  # a limit/stop price more than 50% from the market is refused
    market_hours: str = "calendar"  # "calendar" or "always" (demo: trade equities any time)
    cancel_wait_seconds: float = 2.0


def _number(raw: str | None, field: str, code: ErrorCode, what: str) -> Decimal | None:
    if raw is None:
        return None
    return parse_decimal(raw, field=field, code=code, what=what, max_decimals=INPUT_DECIMALS)


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """What a validated request becomes: the stored order, its hold, the engine command."""

    quantity: Decimal | None
    notional: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    hold_kind: AccountKind
    hold_asset: str
    hold_amount: Decimal
    engine_type: str
    engine_tif: str
    engine_price: Decimal | None
    engine_stop: Decimal | None
    trail_percent: Decimal | None = None
    trail_amount: Decimal | None = None

    @property
    def trail_bps(self) -> int | None:
        """The trail percentage in hundredths of a percent (the engine's unit)."""
        return None if self.trail_percent is None else int(self.trail_percent * 100)


TRAIL_PERCENT_DECIMALS = 2


def plan_order(
    req: PlaceOrderRequest, asset: Asset, reference: Decimal, config: OrdersConfig
) -> OrderPlan:
    """Validate ``req`` against ``asset`` at market price ``reference``; pure (no I/O)."""
    sub, side, tif = req.sub_type, req.side, req.time_in_force
    quantity = _number(req.quantity, "quantity", ErrorCode.INVALID_QUANTITY, "The quantity")
    notional = _number(req.notional, "notional", ErrorCode.INVALID_QUANTITY, "The notional")
    price = _number(req.price, "price", ErrorCode.INVALID_PRICE, "The price")
    stop = _number(req.stop_price, "stopPrice", ErrorCode.INVALID_PRICE, "The stop price")

    if req.extended_hours and sub is not OrderSubType.LIMIT:
        raise DomainError.one(
            ErrorCode.INVALID_ORDER_TYPE,
            "Only limit orders can trade in extended hours (pre-market and after-hours).",
            "extendedHours",
        )
    if (quantity is None) == (notional is None):
        raise DomainError.one(
            ErrorCode.INVALID_QUANTITY, "Give exactly one of quantity and notional.", "quantity"
        )
    if notional is not None:
        if sub is not OrderSubType.MARKET:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY, "A notional amount is for market orders.", "notional"
            )
        if tif is TimeInForce.FOK:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY, "A notional order cannot be fill-or-kill.", "notional"
            )
        if notional > MAX_NOTIONAL or round_cash(notional, asset.currency, ROUND_DOWN) != notional:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY,
                f"The notional must be at most {MAX_NOTIONAL} with at most "
                f"{MINOR_UNITS.get(asset.currency, 2)} decimals.",
                "notional",
            )
    if quantity is not None:
        step = asset.quantity_increment
        if quantity > MAX_QUANTITY or not _on_grid(quantity, step):
            what = "a multiple of " + str(step.normalize()) if asset.fractionable else "whole"
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY,
                f"The quantity must be {what}"
                + ("" if asset.fractionable else f" ({asset.symbol} is not fractionable)")
                + ".",
                "quantity",
            )

    trail_pct, trail_amt = _trail(req, asset, reference, config)
    needs_price = sub in (OrderSubType.LIMIT, OrderSubType.STOP_LIMIT)
    needs_stop = sub in (OrderSubType.STOP_LOSS, OrderSubType.STOP_LIMIT)
    if needs_price and price is None:
        raise DomainError.one(ErrorCode.INVALID_PRICE, f"A {sub} order needs a price.", "price")
    if not needs_price and price is not None:
        raise DomainError.one(ErrorCode.INVALID_PRICE, f"A {sub} order takes no price.", "price")
    if needs_stop and stop is None:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE, f"A {sub} order needs a stop price.", "stopPrice"
        )
    if not needs_stop and stop is not None:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE, f"A {sub} order takes no stop price.", "stopPrice"
        )
    band = Decimal(config.price_band_bps) / Decimal(10_000)
    for value, field in ((price, "price"), (stop, "stopPrice")):
        if value is None:
            continue
        if not _on_grid(value, asset.tick_size):
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"Prices of {asset.symbol} are multiples of {asset.tick_size.normalize()}.",
                field,
            )
        if abs(value - reference) > reference * band:
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"The price is more than {config.price_band_bps / 100:g}% away from the "
                f"market ({reference.normalize()}).",
                field,
            )

    collar = Decimal(asset.collar_bps) / Decimal(10_000)
    engine_type, engine_tif = str(sub), str(tif)
    engine_price, engine_stop = price, stop
    if sub is OrderSubType.TRAILING_STOP:
        stop = engine_stop = trailing_stop(side, reference, trail_pct, trail_amt, asset.tick_size)
    if side is Side.SELL:
        if notional is not None:
            quantity = _floor(notional / reference, asset.quantity_increment)
            if quantity <= 0:
                raise DomainError.one(
                    ErrorCode.INVALID_QUANTITY,
                    "The notional is worth less than the smallest quantity.",
                    "notional",
                )
            notional = None
        assert quantity is not None
        return OrderPlan(
            quantity,
            None,
            price,
            stop,
            AccountKind.SHARES,
            asset.symbol,
            quantity,
            engine_type,
            engine_tif,
            engine_price,
            engine_stop,
            trail_pct,
            trail_amt,
        )

    # BUY: the hold must cover the worst fill.
    if notional is not None:
        hold = notional
    elif sub is OrderSubType.MARKET:
        assert quantity is not None
        engine_price = _floor(reference * (1 + collar), asset.tick_size)
        engine_type = OrderSubType.LIMIT
        engine_tif = TimeInForce.FOK if tif is TimeInForce.FOK else TimeInForce.IOC
        hold = round_cash(quantity * engine_price, asset.currency, ROUND_CEILING)
    elif sub in (OrderSubType.STOP_LOSS, OrderSubType.TRAILING_STOP):
        assert quantity is not None
        assert stop is not None
        engine_price = _floor(stop * (1 + collar), asset.tick_size)
        if sub is OrderSubType.STOP_LOSS:
            engine_type = OrderSubType.STOP_LIMIT
        hold = round_cash(quantity * engine_price, asset.currency, ROUND_CEILING)
    else:
        assert quantity is not None
        assert price is not None
        hold = round_cash(quantity * price, asset.currency, ROUND_CEILING)
    return OrderPlan(
        quantity,
        notional,
        price,
        stop,
        AccountKind.CASH,
        asset.currency,
        hold,
        engine_type,
        engine_tif,
        engine_price,
        engine_stop,
        trail_pct,
        trail_amt,
    )


def _trail(
    req: PlaceOrderRequest, asset: Asset, reference: Decimal, config: OrdersConfig
) -> tuple[Decimal | None, Decimal | None]:
    """A TRAILING_STOP's trail (percent, amount): exactly one, positive, inside the price
    band; a percentage has at most two decimals, an amount is on the tick grid."""
    pct = _number(req.trail_percent, "trailPercent", ErrorCode.INVALID_PRICE, "The trail")
    amt = _number(req.trail_amount, "trailAmount", ErrorCode.INVALID_PRICE, "The trail")
    if req.sub_type is not OrderSubType.TRAILING_STOP:
        if pct is not None or amt is not None:
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"A {req.sub_type} order takes no trail.",
                "trailPercent" if pct is not None else "trailAmount",
            )
        return None, None
    if (pct is None) == (amt is None):
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            "A trailing stop needs exactly one of trailPercent and trailAmount.",
            "trailPercent",
        )
    band_pct = Decimal(config.price_band_bps) / 100
    if pct is not None:
        if pct != pct.quantize(Decimal(1).scaleb(-TRAIL_PERCENT_DECIMALS)) or pct >= band_pct:
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"The trail is a percentage below {band_pct.normalize()} with at most "
                f"{TRAIL_PERCENT_DECIMALS} decimals.",
                "trailPercent",
            )
        return pct, None
    assert amt is not None
    if not _on_grid(amt, asset.tick_size) or amt >= reference * band_pct / 100:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE,
            f"The trail is a multiple of {asset.tick_size.normalize()} below "
            f"{band_pct.normalize()}% of the market ({reference.normalize()}).",
            "trailAmount",
        )
    return None, amt


def trailing_stop(
    side: Side, water: Decimal, pct: Decimal | None, amount: Decimal | None, tick: Decimal
) -> Decimal:
    """A trailing stop at water mark ``water`` (the engine's rule, in decimals): a sell's below
    it, rounded down to the tick; a buy's above it, rounded up."""
    if side is Side.SELL:
        raw = water - amount if amount is not None else water * (1 - (pct or ZERO) / 100)
        return max(_floor(raw, tick), tick)
    raw = water + amount if amount is not None else water * (1 + (pct or ZERO) / 100)
    return (raw / tick).to_integral_value(rounding=ROUND_CEILING) * tick


@dataclass(frozen=True, slots=True)
class ReplaceOrderRequest:
    """``replaceOrder``'s input: each field left None keeps the order's current value."""

    quantity: str | None = None  # the new total quantity (filled included)
    price: str | None = None
    stop_price: str | None = None
    time_in_force: TimeInForce | None = None
    trail_percent: str | None = None
    trail_amount: str | None = None


@dataclass(frozen=True, slots=True)
class ReplacePlan:
    """A validated replace: the order's new terms as a plan (``plan.quantity`` is the new
    total) and ``hold_amount``, what the hold must reserve for the remaining quantity."""

    plan: OrderPlan
    remaining: Decimal
    hold_amount: Decimal


REPLACEABLE_TIFS = frozenset({TimeInForce.GTC, TimeInForce.DAY})


def plan_replace(
    order: Order, req: ReplaceOrderRequest, asset: Asset, reference: Decimal, config: OrdersConfig
) -> ReplacePlan:
    """Validate a replace of ``order`` (pure): the new terms pass every ``plan_order`` rule,
    the new total exceeds what has filled, and the time in force is GTC or DAY (a replaced
    order rests)."""
    sub = order.sub_type
    if sub is OrderSubType.MARKET or order.notional is not None:
        raise DomainError.one(ErrorCode.NOT_CANCELLABLE, "A market order cannot be replaced.", "id")
    tif = req.time_in_force or order.time_in_force
    if tif not in REPLACEABLE_TIFS:
        raise DomainError.one(
            ErrorCode.INVALID_INPUT, "A replaced order is GTC or DAY.", "timeInForce"
        )
    trailing = sub is OrderSubType.TRAILING_STOP
    new_trail = req.trail_percent is not None or req.trail_amount is not None
    stop = req.stop_price
    if stop is None and sub in (OrderSubType.STOP_LOSS, OrderSubType.STOP_LIMIT):
        stop = _text(order.stop_price)
    plan = plan_order(
        PlaceOrderRequest(
            asset_id=order.asset_id,
            side=order.side,
            sub_type=sub,
            time_in_force=tif,
            quantity=req.quantity if req.quantity is not None else _text(order.quantity),
            price=req.price if req.price is not None else _text(order.price),
            stop_price=stop,
            trail_percent=req.trail_percent
            if new_trail
            else (_text(order.trail_percent) if trailing else None),
            trail_amount=req.trail_amount
            if new_trail
            else (_text(order.trail_amount) if trailing else None),
        ),
        asset,
        reference,
        config,
    )
    assert plan.quantity is not None
    remaining = plan.quantity - order.filled_quantity
    if remaining <= 0:
        raise DomainError.one(
            ErrorCode.INVALID_QUANTITY,
            f"The new quantity must be more than the {plain(order.filled_quantity)} already "
            "filled.",
            "quantity",
        )
    if order.side is Side.SELL:
        hold = remaining
    else:
        assert plan.engine_price is not None
        hold = round_cash(remaining * plan.engine_price, asset.currency, ROUND_CEILING)
    return ReplacePlan(plan, remaining, hold)


def replace_command(
    order: Order, replace_id: uuid.UUID, asset: Asset, plan: OrderPlan, tif: TimeInForce
) -> ReplaceCommand:
    """The REPLACE command of a planned replace (fixed-point, the asset's scales), stamped
    with the asset's split count (``asset`` read under its row lock: see ``Asset.split_seq``)."""
    s = scales(asset)
    assert plan.quantity is not None
    return replace_cmd(
        str(order.id),
        asset.symbol,
        str(replace_id),
        quantity=to_fixed(plan.quantity, s.qty_scale),
        tif=str(tif),
        ts=now_ns(),
        price=None if plan.engine_price is None else to_fixed(plan.engine_price, s.price_scale),
        stop_price=None if plan.engine_stop is None else to_fixed(plan.engine_stop, s.price_scale),
        trail_amount=None
        if plan.trail_amount is None
        else to_fixed(plan.trail_amount, s.price_scale),
        trail_bps=plan.trail_bps,
        split_seq=asset.split_seq,
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(plain(value))


def engine_command(
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    asset: Asset,
    plan: OrderPlan,
    side: Side,
    *,
    extended_hours: bool = False,
    order_class: str | None = None,
    legs: list[LegSpec] | None = None,
) -> NewOrderCommand:
    """The NEW_ORDER command of a planned order (fixed-point, the asset's scales); a
    contingent one carries its ``order_class`` and ``legs``. Stamped with the asset's split
    count (``asset`` read under its row lock: see ``Asset.split_seq``)."""
    s = scales(asset)
    return new_order(
        str(order_id),
        str(user_id),
        asset.symbol,
        str(side),
        plan.engine_type,
        plan.engine_tif,
        ts=now_ns(),
        quantity=None if plan.quantity is None else to_fixed(plan.quantity, s.qty_scale),
        notional=None if plan.notional is None else to_fixed(plan.notional, s.price_scale),
        price=None if plan.engine_price is None else to_fixed(plan.engine_price, s.price_scale),
        stop_price=None if plan.engine_stop is None else to_fixed(plan.engine_stop, s.price_scale),
        trail_amount=None
        if plan.trail_amount is None
        else to_fixed(plan.trail_amount, s.price_scale),
        trail_bps=plan.trail_bps,
        extended_hours=extended_hours,
        order_class=order_class,
        legs=legs,
        split_seq=asset.split_seq,
    )


def insufficient(side: Side, plan: OrderPlan, asset: Asset) -> DomainError:
    if side is Side.SELL:
        return DomainError(
            Problem(
                ErrorCode.INSUFFICIENT_SHARES,
                f"You do not have {plan.hold_amount.normalize()} {asset.symbol} available to sell.",
                "quantity",
            )
        )
    return DomainError(
        Problem(
            ErrorCode.INSUFFICIENT_BUYING_POWER,
            f"This order needs {plan.hold_amount} {asset.currency} of buying power.",
            "quantity" if plan.notional is None else "notional",
        )
    )
