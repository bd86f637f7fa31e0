"""Price history: OHLCV candles (1m, 5m, 1h, 1d) built from reference ticks and venue trades.

Rules (docs/ARCHITECTURE.md, "History, summary and news"):

- A candle covers ``[bucket_start, bucket_start + interval)``; buckets are aligned on the Unix
  epoch in UTC (a daily candle is a UTC day: a US equity session, 09:30-16:00 New York, always
  falls inside one UTC day).
- open = the earliest price in the bucket, close = the latest, high/low the extremes (reference
  ticks and trades alike); volume = the sum of trade sizes (reference ticks carry none) and
  notional = the sum of price x size of those trades.
- **Idempotent merge.** A candle remembers the time of the last reference tick and the
  sequence number of the last venue trade merged into it (``last_tick_ts``,
  ``last_trade_seq``: a fill id is ``"<asset>:<n>"``, n counting the asset's fills from 1).
  Before merging, a writer drops the events at or before those watermarks (``aggregate(...,
  watermarks)``), so a replayed batch, or a batch straddling what was already written, adds
  nothing twice. Trades are deduplicated exactly by their sequence; reference ticks by time
  (the provider's ticks are in time order per symbol; a late tick only ever loses a price
  point, never volume). The SQL merge also refuses to add volume unless the batch's last trade
  is newer than the stored one, so two writers racing with the same batch count it once.
  A trade without a sequence (not from our venue) cannot be deduplicated and is always added.
- Storage (``models.candle_partitions``, ``models.candle_store``): ``candles`` is partitioned
  by LIST on the interval, each interval by RANGE on ``bucket_start`` (monthly for 1m/5m,
  yearly for 1h/1d). The partitions live in the ``candle_partitions`` schema and are created
  on demand by writers (``ensure_partitions``) and ahead of time by the maintenance job;
  retention drops whole expired partitions and deletes the expired rows of the partition
  straddling the cutoff.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

QTY = Numeric(38, 18)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PARTITION_SCHEMA = "candle_partitions"


class CandleInterval(enum.Enum):
    """Candle widths. Values are the stored codes; names are the GraphQL enum's values."""

    ONE_MINUTE = "1m"
    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"
    ONE_DAY = "1d"

    @property
    def seconds(self) -> int:
        return _SECONDS[self.value]

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def monthly_partitions(self) -> bool:
        """1m and 5m partitions hold a month; 1h and 1d a year (few rows per asset)."""
        return self in (CandleInterval.ONE_MINUTE, CandleInterval.FIVE_MINUTES)

    def floor(self, t: datetime) -> datetime:
        """The start of the bucket holding ``t`` (UTC)."""
        micros = (t - EPOCH) // timedelta(microseconds=1)
        width = self.seconds * 1_000_000
        return EPOCH + timedelta(microseconds=micros - micros % width)

    def finer(self) -> list[CandleInterval]:
        """Finer intervals, coarsest first (roll-up candidates)."""
        return [i for i in reversed(INTERVALS) if i.seconds < self.seconds]


_SECONDS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
INTERVALS: tuple[CandleInterval, ...] = tuple(CandleInterval)  # finest first


class Candle(Base):
    __tablename__ = "candles"

    asset_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    interval: Mapped[str] = mapped_column(String(2), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    open: Mapped[Decimal] = mapped_column(QTY)
    high: Mapped[Decimal] = mapped_column(QTY)
    low: Mapped[Decimal] = mapped_column(QTY)
    close: Mapped[Decimal] = mapped_column(QTY)
    volume: Mapped[Decimal] = mapped_column(QTY)
    notional: Mapped[Decimal] = mapped_column(QTY)
    open_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    close_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_tick_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_trade_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("interval IN ('1m', '5m', '1h', '1d')", name="interval_known"),
        CheckConstraint("low <= high AND volume >= 0", name="sane"),
        {"postgresql_partition_by": "LIST (interval)"},
    )


# --------------------------------------------------------------------------------------------
# Pure aggregation
# --------------------------------------------------------------------------------------------


class TickLike(Protocol):
    """A price observation: a reference tick (``size`` None) or a venue trade (``size`` set).

    ``workers.marketdata`` ticks and trades satisfy it; so does ``PricePoint``."""

    @property
    def symbol(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def size(self) -> Decimal | None: ...
    @property
    def seq(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class PricePoint:
    symbol: str
    ts: datetime
    price: Decimal
    size: Decimal | None = None
    seq: int | None = None  # a venue trade's sequence (the n of fill id "<asset>:<n>")


CandleKey = tuple[str, CandleInterval, datetime]


@dataclass(frozen=True, slots=True)
class Watermark:
    """What a stored candle has already absorbed from each source."""

    last_tick_ts: datetime | None = None
    last_trade_seq: int | None = None


@dataclass(slots=True)
class CandleData:
    asset_id: str
    interval: CandleInterval
    bucket_start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    open_ts: datetime = EPOCH
    close_ts: datetime = EPOCH
    last_tick_ts: datetime | None = None
    last_trade_seq: int | None = None

    @property
    def key(self) -> CandleKey:
        return (self.asset_id, self.interval, self.bucket_start)

    def row(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "interval": self.interval.value,
            "bucket_start": self.bucket_start,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "notional": self.notional,
            "open_ts": self.open_ts,
            "close_ts": self.close_ts,
            "last_tick_ts": self.last_tick_ts,
            "last_trade_seq": self.last_trade_seq,
        }


def _absorb(c: CandleData, t: TickLike) -> None:
    if t.ts < c.open_ts:
        c.open, c.open_ts = t.price, t.ts
    if t.ts >= c.close_ts:
        c.close, c.close_ts = t.price, t.ts
    c.high = max(c.high, t.price)
    c.low = min(c.low, t.price)
    if t.size is None:
        c.last_tick_ts = t.ts if c.last_tick_ts is None else max(c.last_tick_ts, t.ts)
    else:
        c.volume += t.size
        c.notional += t.price * t.size
        if t.seq is not None:
            c.last_trade_seq = t.seq if c.last_trade_seq is None else max(c.last_trade_seq, t.seq)


def _already_applied(t: TickLike, mark: Watermark | None) -> bool:
    if mark is None:
        return False
    if t.size is None:
        return mark.last_tick_ts is not None and t.ts <= mark.last_tick_ts
    return t.seq is not None and mark.last_trade_seq is not None and t.seq <= mark.last_trade_seq


def aggregate(
    ticks: Iterable[TickLike],
    intervals: Sequence[CandleInterval] = INTERVALS,
    watermarks: Mapping[CandleKey, Watermark] | None = None,
) -> dict[CandleKey, CandleData]:
    """Candles made of ``ticks`` (any order; equal times keep their input order), one per
    (asset, interval, bucket). Events at or before a bucket's watermark are skipped."""
    ordered = sorted(ticks, key=lambda t: t.ts)
    out: dict[CandleKey, CandleData] = {}
    for t in ordered:
        if t.ts.tzinfo is None:
            raise ValueError("tick timestamps must be timezone-aware")
        if t.price <= 0 or (t.size is not None and t.size < 0):
            raise ValueError(f"bad tick {t!r}")
        for interval in intervals:
            key = (t.symbol, interval, interval.floor(t.ts))
            if watermarks is not None and _already_applied(t, watermarks.get(key)):
                continue
            c = out.get(key)
            if c is None:
                c = out[key] = CandleData(
                    t.symbol, interval, key[2], t.price, t.price, t.price, t.price,
                    open_ts=t.ts, close_ts=t.ts,
                )  # fmt: skip
            _absorb(c, t)
    return out


def roll_up(candles: Iterable[CandleData], interval: CandleInterval) -> list[CandleData]:
    """Coarser candles made of finer ones (same asset), ordered by time."""
    out: dict[tuple[str, datetime], CandleData] = {}
    for c in sorted(candles, key=lambda c: c.open_ts):
        key = (c.asset_id, interval.floor(c.bucket_start))
        acc = out.get(key)
        if acc is None:
            out[key] = replace(c, interval=interval, bucket_start=key[1])
            continue
        if c.open_ts < acc.open_ts:
            acc.open, acc.open_ts = c.open, c.open_ts
        if c.close_ts >= acc.close_ts:
            acc.close, acc.close_ts = c.close, c.close_ts
        acc.high, acc.low = max(acc.high, c.high), min(acc.low, c.low)
        acc.volume += c.volume
        acc.notional += c.notional
        acc.last_tick_ts = _latest(acc.last_tick_ts, c.last_tick_ts)
        if c.last_trade_seq is not None:
            acc.last_trade_seq = max(acc.last_trade_seq or 0, c.last_trade_seq)
    return sorted(out.values(), key=lambda c: (c.asset_id, c.bucket_start))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


class Bar(NamedTuple):
    """An OHLCV bar: a chart's (``CandleStore.history``, its numbers in plain form) or a
    backfill file's; ``timestamp`` is the bar's start. A tuple, not a frozen dataclass (whose
    ``__init__`` sets each of the seven fields through ``object.__setattr__``): a day of
    one-minute bars is 1,440 of them per chart request."""

    symbol: str
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def candle(self, interval: CandleInterval) -> CandleData:
        start = interval.floor(self.timestamp)
        end = start + interval.step - timedelta(microseconds=1)
        typical = (self.high + self.low + self.close) / 3
        return CandleData(
            self.symbol, interval, start, self.open, self.high, self.low, self.close,
            volume=self.volume, notional=self.volume * typical, open_ts=start, close_ts=end,
            last_tick_ts=end,
        )  # fmt: skip
