"""Decimal output without trailing zeros and never in exponent form ("100", not "1E+2")."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal) -> Decimal:
    n = value.normalize()
    exponent = n.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return n.quantize(Decimal(1))
    return n
