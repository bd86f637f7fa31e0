"""Cash and decimals: currencies' minor units and the one cash-rounding rule.

Money is ``Decimal`` everywhere outside the matching core, never float. Rounding to the
currency's minor unit always names its mode (there is no default): a fill's cash rounds DOWN
(``fill_cash``: the buyer never pays a fraction of a cent more than quantity x price), a hold
rounds up (``ROUND_CEILING``: it must cover the worst case), and amounts shown to people round
half to even.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Final

MINOR_UNITS: Final[dict[str, int]] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "JPY": 0,
}  # fmt: skip
SUPPORTED_CURRENCIES: Final = frozenset(MINOR_UNITS)


_MINOR_UNIT: Final[dict[str, Decimal]] = {c: Decimal(1).scaleb(-n) for c, n in MINOR_UNITS.items()}
_CENT: Final = Decimal(1).scaleb(-2)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (``0.01`` for USD, ``1`` for JPY)."""
    return _MINOR_UNIT.get(currency, _CENT)


def round_cash(value: Decimal, currency: str, rounding: str) -> Decimal:
    """``value`` in the currency's minor unit, rounded by ``rounding`` (``decimal.ROUND_*``)."""
    return value.quantize(minor_unit(currency), rounding=rounding)


def fill_cash(quantity: Decimal, price: Decimal, currency: str) -> Decimal:
    """The cash a fill moves (commission-free): quantity x price rounded DOWN to the minor unit.
    The ledger's postings and the position's lot cost both use this, so they always agree."""
    return round_cash(quantity * price, currency, ROUND_DOWN)


_ONE = Decimal(1)


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent notation (``Decimal("100.00")``
    → ``100``, not ``1E+2``): how prices and quantities are shown."""
    # Integral values quantized to the unit (1E+2 -> 100); compared, not read through
    # ``as_tuple()`` (which builds the digits: 2.4x the cost; a chart's 1,440 candles take
    # 7,200 of these per request).
    normal = value.normalize()
    if normal.is_finite() and normal == normal.to_integral_value():
        return normal.quantize(_ONE)
    return normal
