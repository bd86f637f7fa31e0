"""Supported cash currencies and their minor units (ISO 4217)."""

from __future__ import annotations

MINOR_UNITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "JPY": 0}
SUPPORTED_CURRENCIES = frozenset(MINOR_UNITS)
