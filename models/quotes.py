"""Live quotes and FX rates, as the market-data side keeps them in Redis.

- ``<P>quote:<symbol>``: a string, JSON ``{"asset_id", "price", "bid", "ask", "last_trade",
  "reference", "ts"}`` (Decimal strings or null; ``ts`` ISO-8601 UTC), the latest quote of the
  asset. Written by the market-data feed (``workers.marketdata``); read here.
- ``<P>quotes:<symbol>``: a pub/sub channel carrying the same JSON every time the feed writes a
  new quote of the asset (the ``quotes`` subscription listens to it through the API's hub).
- ``<P>fx``: a hash ``{"EUR": "1.08", ...}``: USD per one unit of the currency. Missing
  currencies fall back to ``DEFAULT_USD_PER_UNIT`` (a fixed table, good enough for the demo).

Readers always get a price: when Redis has no quote, the asset's stored reference price is the
fallback (``price_of``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from redis.asyncio import Redis

from bourse import redis_client
from bourse.clock import utcnow
from bourse.keys import book_key, fx_key, quote_channel, quote_key, shard_for
from models.assets import Asset

DEFAULT_USD_PER_UNIT: dict[str, Decimal] = {
    "USD": Decimal(1),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "CHF": Decimal("1.13"),
    "CAD": Decimal("0.72"),
    "JPY": Decimal("0.0066"),
}


@dataclass(frozen=True, slots=True)
class QuoteData:
    asset_id: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    timestamp: datetime
    # What ``price`` was made from: the venue's last trade (if recent) and the provider's
    # reference price. Optional, so quotes written before they existed still parse.
    last_trade: Decimal | None = None
    reference: Decimal | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "asset_id": self.asset_id,
                "price": str(self.price),
                "bid": _opt(self.bid),
                "ask": _opt(self.ask),
                "last_trade": _opt(self.last_trade),
                "reference": _opt(self.reference),
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
            last_trade=None if obj.get("last_trade") is None else Decimal(obj["last_trade"]),
            reference=None if obj.get("reference") is None else Decimal(obj["reference"]),
        )


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


async def read_quotes(redis: Redis, prefix: str, symbols: Sequence[str]) -> dict[str, QuoteData]:
    """The latest quote of each symbol that has one, in one round trip (MGET)."""
    if not symbols:
        return {}
    raws = await redis_client.mget(redis, [quote_key(prefix, s) for s in symbols])
    return {s: QuoteData.from_json(r) for s, r in zip(symbols, raws, strict=True) if r is not None}


async def anchor_price(
    pipelined: redis_client.Pipelined, prefix: str, shards: int, asset: Asset
) -> Decimal:
    """The price an order is planned on (collar caps, price bands, notional sells), in one
    round trip shared with the concurrent requests' (``Pipelined``): the live quote when the
    feed has one, else the venue's mark (the freshest of the engine's reference price and its
    last trade, from the shard's book document: what the engine's collar anchors on), else the
    asset's stored reference price."""
    symbol = asset.symbol
    # Two GETs, not one MGET: on a Redis Cluster the two keys live in different slots.
    quote_raw, book_raw = await pipelined.execute(
        ("GET", quote_key(prefix, symbol)),
        ("GET", book_key(prefix, shard_for(symbol, shards), symbol)),
    )
    if quote_raw is not None:
        return QuoteData.from_json(quote_raw).price
    if book_raw is not None:
        mark = json.loads(book_raw).get("mark")
        if mark:
            return Decimal(str(mark))
    return price_of(asset, {}).price


async def write_quotes(
    redis: Redis, prefix: str, quotes: Iterable[QuoteData], *, publish: bool = False
) -> None:
    """Store the latest quote of each asset (one MSET); with ``publish``, also PUBLISH each on
    its ``quote_channel`` in the same MULTI/EXEC, so a subscriber that reads the key after a
    message never sees an older quote than the message."""
    bodies = {q.asset_id: q.to_json() for q in quotes}
    if not bodies:
        return
    mapping = {quote_key(prefix, symbol): body for symbol, body in bodies.items()}
    if not publish:
        await redis_client.mset(redis, mapping)
        return
    if redis_client.is_cluster(redis):
        # No MULTI/EXEC across slots: every quote is stored before the first is published,
        # which keeps the promise above (the key is never older than a message heard).
        await redis_client.mset(redis, mapping)
        pipe = redis.pipeline(transaction=False)
    else:
        pipe = redis.pipeline(transaction=True)
        pipe.mset(mapping)
    for symbol, body in bodies.items():
        redis_client.publish(pipe, quote_channel(prefix, symbol), body)
    await pipe.execute()


def display_price(value: Decimal, tick_size: Decimal | None = None) -> Decimal:
    """``value`` without exponent notation or storage padding (``NUMERIC(38, 18)`` reads back as
    ``20.000000000000000000``), with at least the tick's decimals: ``20.00`` for a 0.01 tick."""
    plain = value.normalize()
    if tick_size is not None:
        tick = tick_size.normalize()
        if plain.as_tuple().exponent > tick.as_tuple().exponent:  # type: ignore[operator]
            return plain.quantize(tick)
    if plain.as_tuple().exponent > 0:  # type: ignore[operator]
        return plain.quantize(Decimal(1))
    return plain


def split_adjusted(value: Decimal, numerator: int, denominator: int, tick: Decimal) -> Decimal:
    """A reference-like price after a numerator-for-denominator stock split: ``value`` / (n/d)
    rounded down to the tick, at least one tick (the asset's reference price and previous
    close, the live quote, the feed's price walk: one rule, so they agree)."""
    ticks = (value * denominator / numerator / tick).to_integral_value(ROUND_DOWN)
    return max(ticks, Decimal(1)) * tick


def split_quote(q: QuoteData, numerator: int, denominator: int, tick: Decimal) -> QuoteData:
    """The quote in post-split prices (``split_adjusted`` on each price it carries)."""

    def adjust(v: Decimal | None) -> Decimal | None:
        if v is None:
            return None
        return display_price(split_adjusted(v, numerator, denominator, tick), tick)

    price = adjust(q.price)
    assert price is not None
    return QuoteData(
        asset_id=q.asset_id,
        price=price,
        bid=adjust(q.bid),
        ask=adjust(q.ask),
        timestamp=q.timestamp,
        last_trade=adjust(q.last_trade),
        reference=adjust(q.reference),
    )


async def split_live_quote(
    redis: Redis,
    prefix: str,
    asset: Asset,
    numerator: int,
    denominator: int,
    applied_at: datetime,
) -> None:
    """Rescale the asset's live quote in Redis (if any) after a split, and publish it, so
    readers (the liquidity provider's ladder, order planning) do not see the old prices.

    Only a quote from before the split (``timestamp < applied_at``): a later one is the feed's,
    which rescales its own state when it sees the split and publishes post-split prices; the
    feed can do that before this runs, and halving its quote again gave a 2-for-1 split a
    quarter of the price."""
    found = (await read_quotes(redis, prefix, [asset.symbol])).get(asset.symbol)
    if found is None or found.timestamp >= applied_at:
        return
    adjusted = split_quote(found, numerator, denominator, asset.tick_size)
    await write_quotes(redis, prefix, [adjusted], publish=True)


class Priced(Protocol):
    """What `price_of` reads of an asset: an `Asset` row, or the valuation's `AssetPricing`."""

    @property
    def symbol(self) -> str: ...
    @property
    def reference_price(self) -> Decimal: ...
    @property
    def tick_size(self) -> Decimal: ...
    @property
    def updated_at(self) -> datetime: ...


def price_of(asset: Priced, quotes: dict[str, QuoteData]) -> QuoteData:
    """The asset's live quote, or one made from its stored reference price."""
    found = quotes.get(asset.symbol)
    if found is not None:
        return found
    return QuoteData(
        asset_id=asset.symbol,
        price=display_price(asset.reference_price, asset.tick_size),
        bid=None,
        ask=None,
        timestamp=asset.updated_at if asset.updated_at else utcnow(),
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
