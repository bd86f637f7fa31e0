"""Decimal ↔ fixed-point conversions at the edge of the engine. Never floats.

An asset has two scales: prices (and notional cash amounts) are integers in units of
``10**-price_scale``, quantities in units of ``10**-qty_scale``. The tick size and the lot size
are integers in those units. ``asset_scales`` derives all four from the Decimal tick size and
quantity increment the platform stores for an asset, and ``add_asset_command`` builds the
ADD_ASSET command that tells the shard.

Conversions are exact by default: a value with more decimals than the scale raises
``ValueError`` rather than being rounded silently. Pass ``rounding`` (a ``decimal`` rounding
mode, e.g. ``ROUND_DOWN`` for a notional cash amount) to round on purpose.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import NamedTuple

from .core.constants import CANCEL_NEWEST, DEFAULT_COLLAR_BPS
from .wire import AddAssetCommand, add_asset

__all__ = [
    "ROUND_DOWN",
    "AssetScales",
    "add_asset_command",
    "asset_scales",
    "fill_value",
    "format_fixed",
    "from_fixed",
    "to_fixed",
]


def _decimal(value: Decimal | str | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"expected Decimal, str or int, got {type(value).__name__}")
    try:
        d = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


def to_fixed(value: Decimal | str | int, scale: int, rounding: str | None = None) -> int:
    """``value`` in units of ``10**-scale``. Exact unless ``rounding`` is given."""
    d = _decimal(value).scaleb(scale)
    i = int(d.to_integral_value(rounding=rounding or ROUND_DOWN))
    if rounding is None and d != i:
        raise ValueError(f"{value} has more than {scale} decimal places")
    return i


def from_fixed(value: int, scale: int) -> Decimal:
    """The Decimal for a fixed-point integer, with exactly ``scale`` decimal places."""
    if type(value) is not int:
        raise TypeError("fixed-point values are ints")
    return Decimal(value).scaleb(-scale)


def fill_value(price: int, quantity: int, price_scale: int, qty_scale: int) -> Decimal:
    """Exact cash value of a fill (price * quantity), unrounded: the settlement side rounds it
    to the currency's minor unit by its own documented rule."""
    return Decimal(price * quantity).scaleb(-(price_scale + qty_scale))


class AssetScales(NamedTuple):
    """The integer view of an asset's precision."""

    price_scale: int
    tick_size: int  # in price units
    qty_scale: int
    lot_size: int  # in quantity units

    def price(self, value: Decimal | str | int) -> int:
        """A price in price units; must sit on the tick grid."""
        p = to_fixed(value, self.price_scale)
        if p <= 0 or p % self.tick_size:
            raise ValueError(f"price {value} is not a positive multiple of the tick size")
        return p

    def quantity(self, value: Decimal | str | int) -> int:
        """A quantity in quantity units; must be a positive multiple of the lot size."""
        q = to_fixed(value, self.qty_scale)
        if q <= 0 or q % self.lot_size:
            raise ValueError(f"quantity {value} is not a positive multiple of the lot size")
        return q

    def notional(self, value: Decimal | str | int) -> int:
        """A cash amount in price units, rounded down (never spend more than given)."""
        n = to_fixed(value, self.price_scale, ROUND_DOWN)
        if n <= 0:
            raise ValueError(f"notional {value} is not positive")
        return n

    def reference(self, value: Decimal | str | int) -> int:
        """A reference price from market data, rounded down to the price scale (it need not
        sit on the tick grid)."""
        return to_fixed(value, self.price_scale, ROUND_DOWN)

    def price_decimal(self, value: int) -> Decimal:
        return from_fixed(value, self.price_scale)

    def quantity_decimal(self, value: int) -> Decimal:
        return from_fixed(value, self.qty_scale)


def _places(step: Decimal) -> int:
    exp = step.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def asset_scales(tick_size: Decimal | str, qty_increment: Decimal | str) -> AssetScales:
    """Scales from the tick size (e.g. ``"0.01"``) and the quantity increment (e.g.
    ``"0.000001"`` for fractional shares, ``"1"`` for whole shares)."""
    tick = _decimal(tick_size)
    step = _decimal(qty_increment)
    if tick <= 0 or step <= 0:
        raise ValueError("tick size and quantity increment must be positive")
    ps = _places(tick)
    qs = _places(step)
    return AssetScales(ps, to_fixed(tick, ps), qs, to_fixed(step, qs))


def add_asset_command(
    asset_id: str,
    tick_size: Decimal | str,
    qty_increment: Decimal | str,
    *,
    collar_bps: int = DEFAULT_COLLAR_BPS,
    stp: str = CANCEL_NEWEST,
    ts: int = 0,
) -> AddAssetCommand:
    """The ADD_ASSET command for an asset's Decimal precision."""
    s = asset_scales(tick_size, qty_increment)
    return add_asset(
        asset_id,
        price_scale=s.price_scale,
        tick_size=s.tick_size,
        qty_scale=s.qty_scale,
        lot_size=s.lot_size,
        collar_bps=collar_bps,
        stp=stp,
        ts=ts,
    )


def format_fixed(value: int, scale: int) -> str:
    """A fixed-point integer as a plain decimal string (``12345, 2 → "123.45"``), never in
    exponent notation."""
    if not scale:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}"
