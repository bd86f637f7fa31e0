"""Live quotes and FX rates, as the market-data side keeps them in Redis.

- ``<P>quote:<symbol>``: a string, JSON ``{"asset_id", "price", "bid", "ask", "last_trade",
  "reference", "ts"}`` (Decimal strings or null; ``ts`` ISO-8601 UTC), the latest quote of the
  asset. Written by the market-data feed and the settlement consumer (last trade); read here.
- ``<P>fx``: a hash ``{"EUR": "1.08", ...}``: USD per one unit of the currency. Missing
  currencies fall back to ``DEFAULT_USD_PER_UNIT`` (a fixed table, good enough for the demo).

Readers always get a price: when Redis has no quote, the asset's stored reference price is the
fallback (``price_of``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from models.assets import Asset

DEFAULT_USD_PER_UNIT: dict[str, Decimal] = {
    "USD": Decimal(1),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "CHF": Decimal("1.13"),
    "CAD": Decimal("0.72"),
    "JPY": Decimal("0.0066"),
}


def quote_key(prefix: str, symbol: str) -> str:
    return f"{prefix}quote:{symbol}"


def fx_key(prefix: str) -> str:
    return f"{prefix}fx"


@dataclass(frozen=True, slots=True)
class QuoteData:
    asset_id: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    timestamp: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "asset_id": self.asset_id,
                "price": str(self.price),
                "bid": None if self.bid is None else str(self.bid),
                "ask": None if self.ask is None else str(self.ask),
                "ts": self.timestamp.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> QuoteData:
        obj: dict[str, Any] = json.loads(raw)
        return cls(
            asset_id=obj["asset_id"],
            price=Decimal(obj["price"]),
            bid=None if obj.get("bid") is None else Decimal(obj["bid"]),
            ask=None if obj.get("ask") is None else Decimal(obj["ask"]),
            timestamp=datetime.fromisoformat(obj["ts"]),
        )


async def read_quotes(redis: Redis, prefix: str, symbols: Sequence[str]) -> dict[str, QuoteData]:
    """The latest quote of each symbol that has one, in one round trip (MGET)."""
    if not symbols:
        return {}
    raws = await redis.mget([quote_key(prefix, s) for s in symbols])
    return {s: QuoteData.from_json(r) for s, r in zip(symbols, raws, strict=True) if r is not None}


async def write_quotes(redis: Redis, prefix: str, quotes: Iterable[QuoteData]) -> None:
    mapping = {quote_key(prefix, q.asset_id): q.to_json() for q in quotes}
    if mapping:
        await redis.mset(mapping)


def price_of(asset: Asset, quotes: dict[str, QuoteData]) -> QuoteData:
    """The asset's live quote, or one made from its stored reference price."""
    found = quotes.get(asset.symbol)
    if found is not None:
        return found
    return QuoteData(
        asset_id=asset.symbol,
        price=asset.reference_price.normalize(),
        bid=None,
        ask=None,
        timestamp=asset.updated_at if asset.updated_at else datetime.now(UTC),
    )


async def usd_per_unit(redis: Redis, prefix: str) -> dict[str, Decimal]:
    """USD per one unit of each currency (Redis overrides over the default table)."""
    rates = dict(DEFAULT_USD_PER_UNIT)
    stored = await redis.hgetall(fx_key(prefix))  # type: ignore[misc]
    for k, v in stored.items():
        code = k.decode() if isinstance(k, bytes) else str(k)
        rates[code] = Decimal(v.decode() if isinstance(v, bytes) else str(v))
    return rates


def convert(amount: Decimal, from_ccy: str, to_ccy: str, rates: dict[str, Decimal]) -> Decimal:
    """``amount`` in ``from_ccy`` expressed in ``to_ccy`` (unrounded)."""
    if from_ccy == to_ccy:
        return amount
    return amount * rates[from_ccy] / rates[to_ccy]
