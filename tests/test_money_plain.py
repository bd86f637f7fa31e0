"""``bourse.money.plain``: how prices and quantities are shown (no trailing zeros, never in
positive exponent), the same number."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bourse.money import plain


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**12),
                   max_value=10**12))  # fmt: skip
def test_plain_is_the_same_number_shown_without_zeros_or_exponent(value: Decimal) -> None:
    shown = str(plain(value))
    assert Decimal(shown) == value
    assert "E+" not in shown  # (below 1E-6 str() itself writes 1E-8: unchanged here)
    assert "." not in shown or not shown.endswith("0")


def test_plain_examples() -> None:
    cases = {"100.00": "100", "1E+2": "100", "101.250": "101.25", "0.000100": "0.0001",
             "0E-8": "0", "-0.00": "-0", "5": "5"}  # fmt: skip
    assert {k: str(plain(Decimal(k))) for k in cases} == cases
