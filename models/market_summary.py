"""The market at a glance: top movers, an index of the universe, today's traded volume.

- **Change** of an asset = live price (``models.quotes``: the Redis quote, else the stored
  reference price) versus its base: ``assets.previous_close`` (rolled at each session close
  by ``workers.marketdata.summary``), else the close of its last daily candle before today
  (UTC), else its reference price (no change). ``percentageChange`` is rounded half-even to
  0.01; ranking uses the exact value, ties by symbol. Gainers have a positive change, losers
  a negative one.
- **Index**: equal-weighted over the tradable assets, base 1000 at their previous closes:
  ``1000 x mean(price_i / base_i)``. It needs no divisor upkeep when assets are listed, and
  every asset moves it as much as any other, whatever its price.
- **Volume**: the quantity traded on the venue today (UTC day), summed over assets from the
  daily candles; ``tradingValue`` is the same trades' notional in USD.
- Cached in Redis for ``ttl`` seconds (one computation serves every API node meanwhile).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from redis.asyncio import Redis
from sqlalchemy import text

from bourse.clock import utcnow
from bourse.keys import summary_key
from bourse.money import plain
from models.assets import Asset, Assets
from models.candle_store import CandleStore
from models.quotes import convert, price_of, read_quotes, usd_per_unit

CENT = Decimal("0.01")
INDEX_BASE = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Mover:
    asset_id: str
    percentage_change: Decimal
    price: Decimal
    previous_close: Decimal


@dataclass(frozen=True, slots=True)
class Summary:
    top_gainers: list[Mover]
    top_losers: list[Mover]
    market_index: Decimal
    trading_volume: Decimal
    trading_value: Decimal
    as_of: datetime

    def to_json(self) -> str:
        def movers(ms: Sequence[Mover]) -> list[list[str]]:
            return [
                [m.asset_id, str(m.percentage_change), str(m.price), str(m.previous_close)]
                for m in ms
            ]

        return json.dumps(
            {
                "g": movers(self.top_gainers),
                "l": movers(self.top_losers),
                "i": str(self.market_index),
                "v": str(self.trading_volume),
                "n": str(self.trading_value),
                "t": self.as_of.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Summary:
        obj = json.loads(raw)

        def movers(rows: list[list[str]]) -> list[Mover]:
            return [Mover(a, Decimal(p), Decimal(x), Decimal(b)) for a, p, x, b in rows]

        return cls(
            top_gainers=movers(obj["g"]),
            top_losers=movers(obj["l"]),
            market_index=Decimal(obj["i"]),
            trading_volume=Decimal(obj["v"]),
            trading_value=Decimal(obj["n"]),
            as_of=datetime.fromisoformat(obj["t"]),
        )


def percentage_change(price: Decimal, base: Decimal) -> Decimal:
    return (price - base) / base * 100


def rank(
    changes: dict[str, tuple[Decimal, Decimal, Decimal]], n: int
) -> tuple[list[Mover], list[Mover]]:
    """Top ``n`` gainers (largest positive change first) and losers (most negative first) of
    ``{symbol: (exact change, price, base)}``."""

    def mover(symbol: str) -> Mover:
        change, price, base = changes[symbol]
        return Mover(
            symbol,
            change.quantize(CENT, ROUND_HALF_EVEN),
            plain(price),
            plain(base),
        )

    gainers = sorted((s for s, v in changes.items() if v[0] > 0), key=lambda s: (-changes[s][0], s))
    losers = sorted((s for s, v in changes.items() if v[0] < 0), key=lambda s: (changes[s][0], s))
    return [mover(s) for s in gainers[:n]], [mover(s) for s in losers[:n]]


class MarketSummaries:
    def __init__(
        self,
        assets: Assets,
        candles: CandleStore,
        redis: Redis,
        prefix: str,
        *,
        ttl_seconds: float = 5.0,
        movers: int = 5,
        universe: Sequence[str] | None = None,
    ) -> None:
        self.assets = assets
        self.candles = candles
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.movers = movers
        self.universe = None if universe is None else set(universe)

    async def get(self) -> Summary:
        key = summary_key(self.prefix)
        if self.ttl_seconds > 0:
            cached = await self.redis.get(key)
            if cached is not None:
                return Summary.from_json(cached)
        summary = await self.compute(utcnow())
        if self.ttl_seconds > 0:
            await self.redis.set(key, summary.to_json(), px=max(1, int(self.ttl_seconds * 1000)))
        return summary

    async def bases(self, assets: Sequence[Asset], now: datetime) -> dict[str, Decimal]:
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        missing = [a.symbol for a in assets if not a.previous_close]
        daily = await self.candles.last_daily_close(missing, today) if missing else {}
        return {
            a.symbol: a.previous_close or daily.get(a.symbol) or a.reference_price for a in assets
        }

    async def compute(self, now: datetime) -> Summary:
        assets = [
            a
            for a in await self.assets.all()
            if a.tradable and (self.universe is None or a.symbol in self.universe)
        ]
        quotes = await read_quotes(self.redis, self.prefix, [a.symbol for a in assets])
        bases = await self.bases(assets, now)
        changes: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for a in assets:
            price, base = price_of(a, quotes).price, bases[a.symbol]
            changes[a.symbol] = (percentage_change(price, base), price, base)
        gainers, losers = rank(changes, self.movers)
        if changes:
            ratio = sum((v[1] / v[2] for v in changes.values()), Decimal(0)) / len(changes)
            index = (INDEX_BASE * ratio).quantize(CENT, ROUND_HALF_EVEN)
        else:
            index = INDEX_BASE.quantize(CENT)
        volume, value = await self.traded_today(assets, now)
        return Summary(gainers, losers, index, volume, value, now)

    async def traded_today(self, assets: Sequence[Asset], now: datetime) -> tuple[Decimal, Decimal]:
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        currency = {a.symbol: a.currency for a in assets}
        rates = await usd_per_unit(self.redis, self.prefix)
        async with self.candles.sessionmaker() as s:
            rows = await s.execute(
                text(
                    "SELECT asset_id, volume, notional FROM candles "
                    "WHERE interval = '1d' AND bucket_start >= :a AND bucket_start < :b"
                ),
                {"a": today, "b": today + timedelta(days=1)},
            )
            volume, value = Decimal(0), Decimal(0)
            for r in rows:
                if r.asset_id not in currency:
                    continue
                volume += r.volume
                value += convert(r.notional, currency[r.asset_id], "USD", rates)
        return plain(volume), value.quantize(CENT, ROUND_HALF_EVEN)
