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
- Storage: ``candles`` is partitioned by LIST on the interval, each interval by RANGE on
  ``bucket_start`` (monthly for 1m/5m, yearly for 1h/1d). The partitions live in the
  ``candle_partitions`` schema and are created on demand by writers (``ensure_partitions``) and
  ahead of time by the maintenance job; retention drops whole expired partitions and deletes
  the expired rows of the partition straddling the cutoff.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Numeric,
    String,
    bindparam,
    case,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.errors import DomainError, ErrorCode

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


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar from a file (backfill); ``timestamp`` is the bar's start."""

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


# --------------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    interval: CandleInterval
    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        suffix = self.start.strftime("%Y%m" if self.interval.monthly_partitions else "%Y")
        return f"candles_{self.interval.value}_{suffix}"

    @classmethod
    def holding(cls, interval: CandleInterval, t: datetime) -> Partition:
        t = t.astimezone(UTC)
        if interval.monthly_partitions:
            start = datetime(t.year, t.month, 1, tzinfo=UTC)
            end = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
        else:
            start = datetime(t.year, 1, 1, tzinfo=UTC)
            end = datetime(t.year + 1, 1, 1, tzinfo=UTC)
        return cls(interval, start, end)

    @classmethod
    def parse(cls, name: str) -> Partition | None:
        parts = name.split("_")
        if len(parts) != 3 or parts[0] != "candles":
            return None
        try:
            interval = CandleInterval(parts[1])
            if interval.monthly_partitions and len(parts[2]) == 6:
                t = datetime(int(parts[2][:4]), int(parts[2][4:]), 1, tzinfo=UTC)
            elif not interval.monthly_partitions and len(parts[2]) == 4:
                t = datetime(int(parts[2]), 1, 1, tzinfo=UTC)
            else:
                return None
        except ValueError:
            return None
        return cls.holding(interval, t)


def partitions_between(interval: CandleInterval, start: datetime, end: datetime) -> list[Partition]:
    """Every partition of ``interval`` touching ``[start, end]``."""
    out = [Partition.holding(interval, start)]
    while out[-1].end <= end:
        out.append(Partition.holding(interval, out[-1].end))
    return out


def _sub_parent(interval: CandleInterval) -> str:
    return f"{PARTITION_SCHEMA}.candles_{interval.value}"


# Serialises partition DDL between processes (creating one twice at once fails).
PARTITION_LOCK_ID = 0x63616E646C6573  # "candles"


async def create_partitions(conn: AsyncConnection, wanted: Iterable[Partition]) -> list[str]:
    """Create the missing ``wanted`` partitions (in the caller's transaction); their names."""
    wanted = sorted(set(wanted), key=lambda p: (p.interval.value, p.start))
    if not wanted:
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PARTITION_LOCK_ID})
    existing = set(
        (
            await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                {"s": PARTITION_SCHEMA},
            )
        ).scalars()
    )
    made = []
    for p in wanted:
        if p.name in existing:
            continue
        # Names and bounds come from our own enum and datetimes, never from input.
        await conn.execute(
            text(
                f"CREATE TABLE {PARTITION_SCHEMA}.{p.name} PARTITION OF {_sub_parent(p.interval)} "
                f"FOR VALUES FROM ('{p.start.isoformat()}') TO ('{p.end.isoformat()}')"
            )
        )
        made.append(p.name)
    return made


async def existing_partitions(conn: AsyncConnection) -> list[Partition]:
    names = (
        await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": PARTITION_SCHEMA}
        )
    ).scalars()
    found = [Partition.parse(n) for n in names]
    return sorted((p for p in found if p), key=lambda p: (p.interval.value, p.start))


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------

_UPSERT_BATCH = 2000
_COLUMNS = (
    "asset_id", "interval", "bucket_start", "open", "high", "low", "close", "volume",
    "notional", "open_ts", "close_ts", "last_tick_ts", "last_trade_seq",
)  # fmt: skip


def _merge_statement() -> Any:
    stmt = insert(Candle)
    x, c = stmt.excluded, Candle.__table__.c
    # Volume is added only when the batch carries trades newer than the stored ones (or
    # trades without a sequence): a concurrent duplicate of the same batch adds nothing.
    fresh_trades = (
        x.last_trade_seq.is_(None)
        | c.last_trade_seq.is_(None)
        | (x.last_trade_seq > c.last_trade_seq)
    )
    return stmt.on_conflict_do_update(
        index_elements=[Candle.asset_id, Candle.interval, Candle.bucket_start],
        set_={
            "open": case((x.open_ts < c.open_ts, x.open), else_=c.open),
            "open_ts": func.least(x.open_ts, c.open_ts),
            "high": func.greatest(x.high, c.high),
            "low": func.least(x.low, c.low),
            "close": case((x.close_ts >= c.close_ts, x.close), else_=c.close),
            "close_ts": func.greatest(x.close_ts, c.close_ts),
            "volume": case((fresh_trades, c.volume + x.volume), else_=c.volume),
            "notional": case((fresh_trades, c.notional + x.notional), else_=c.notional),
            "last_tick_ts": func.greatest(x.last_tick_ts, c.last_tick_ts),
            "last_trade_seq": func.greatest(x.last_trade_seq, c.last_trade_seq),
        },
    )


def _replace_statement() -> Any:
    stmt = insert(Candle)
    cols = [k for k in _COLUMNS if k not in ("asset_id", "interval", "bucket_start")]
    return stmt.on_conflict_do_update(
        index_elements=[Candle.asset_id, Candle.interval, Candle.bucket_start],
        set_={k: stmt.excluded[k] for k in cols},
    )


@dataclass(frozen=True, slots=True)
class Retention:
    """Days kept per interval; 0 keeps forever."""

    days: Mapping[CandleInterval, int] = field(
        default_factory=lambda: {
            CandleInterval.ONE_MINUTE: 30,
            CandleInterval.FIVE_MINUTES: 365,
            CandleInterval.ONE_HOUR: 0,
            CandleInterval.ONE_DAY: 0,
        }
    )

    def cutoff(self, interval: CandleInterval, now: datetime) -> datetime | None:
        days = self.days.get(interval, 0)
        return None if days <= 0 else interval.floor(now - timedelta(days=days))


@dataclass(frozen=True, slots=True)
class RetentionReport:
    dropped_partitions: list[str]
    deleted_rows: int


def _candle_from_row(r: Any, interval: CandleInterval) -> CandleData:
    return CandleData(
        r.asset_id, interval, r.bucket_start, r.open, r.high, r.low, r.close,
        volume=r.volume, notional=r.notional, open_ts=r.open_ts, close_ts=r.close_ts,
        last_tick_ts=r.last_tick_ts, last_trade_seq=r.last_trade_seq,
    )  # fmt: skip


_ROLLUP_SQL = """
SELECT c.asset_id,
       date_bin(CAST(:stride AS interval), c.bucket_start, TIMESTAMPTZ '1970-01-01 00:00+00')
           AS bucket_start,
       (array_agg(c.open ORDER BY c.open_ts))[1] AS open,
       max(c.high) AS high, min(c.low) AS low,
       (array_agg(c.close ORDER BY c.close_ts DESC))[1] AS close,
       sum(c.volume) AS volume, sum(c.notional) AS notional,
       min(c.open_ts) AS open_ts, max(c.close_ts) AS close_ts,
       max(c.last_tick_ts) AS last_tick_ts, max(c.last_trade_seq) AS last_trade_seq
FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) AS g(s, e)
JOIN candles c ON c.asset_id = :asset AND c.interval = :finer
     AND c.bucket_start >= g.s AND c.bucket_start < g.e
GROUP BY 1, 2
"""
# Built from constants only (column names and the roll-up above), never from input.
_DERIVE_SQL = (
    f"INSERT INTO candles ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"SELECT r.asset_id, :coarser, {', '.join(_COLUMNS[2:])} FROM ({_ROLLUP_SQL}) AS r "
    "ON CONFLICT (asset_id, interval, bucket_start) DO UPDATE SET "
    + ", ".join(f"{k} = excluded.{k}" for k in _COLUMNS[3:])
)


class CandleStore:
    """Reads and writes candles; knows which partitions exist (cached per process)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        retention: Retention | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.retention = retention or Retention()
        self._known: set[Partition] = set()

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sessionmaker

    # ---- partitions -----------------------------------------------------------------------

    async def ensure_partitions(self, wanted: Iterable[Partition]) -> None:
        missing = set(wanted) - self._known
        if not missing:
            return
        async with self._sessionmaker() as s, s.begin():
            await create_partitions(await s.connection(), missing)
        self._known |= missing

    async def ensure_ahead(self, now: datetime, periods: int = 2) -> None:
        """The current partition of every interval and the next ``periods`` ones."""
        wanted: list[Partition] = []
        for interval in INTERVALS:
            p = Partition.holding(interval, now)
            wanted.append(p)
            for _ in range(periods):
                p = Partition.holding(interval, p.end)
                wanted.append(p)
        await self.ensure_partitions(wanted)

    def _partitions_for(self, candles: Iterable[CandleData]) -> set[Partition]:
        return {Partition.holding(c.interval, c.bucket_start) for c in candles}

    # ---- writing --------------------------------------------------------------------------

    async def watermarks(self, keys: Iterable[CandleKey]) -> dict[CandleKey, Watermark]:
        keys = list(keys)
        if not keys:
            return {}
        stmt = text(
            "SELECT c.asset_id, c.interval, c.bucket_start, c.last_tick_ts, c.last_trade_seq "
            "FROM unnest(:a, :i, :b) AS k(a, i, b) JOIN candles c "
            "ON c.asset_id = k.a AND c.interval = k.i AND c.bucket_start = k.b"
        ).bindparams(
            bindparam("a", type_=ARRAY(String)),
            bindparam("i", type_=ARRAY(String)),
            bindparam("b", type_=ARRAY(DateTime(timezone=True))),
        )
        async with self._sessionmaker() as s:
            rows = await s.execute(
                stmt,
                {
                    "a": [k[0] for k in keys],
                    "i": [k[1].value for k in keys],
                    "b": [k[2] for k in keys],
                },
            )
            return {
                (r.asset_id, CandleInterval(r.interval), r.bucket_start): Watermark(
                    r.last_tick_ts, r.last_trade_seq
                )
                for r in rows
            }

    async def record(self, ticks: Sequence[TickLike]) -> int:
        """Merge ticks and trades into every interval's candles, idempotently (see module
        docstring). Returns the number of candles written."""
        if not ticks:
            return 0
        keys = {
            (t.symbol, i, i.floor(t.ts)) for t in ticks for i in INTERVALS
        }  # fmt: skip
        marks = await self.watermarks(keys)
        candles = list(aggregate(ticks, INTERVALS, marks).values())
        await self._write(candles, _merge_statement())
        return len(candles)

    async def replace(self, candles: Sequence[CandleData]) -> int:
        """Store candles as given, replacing what was there (backfill: the file is the truth)."""
        await self._write(candles, _replace_statement())
        return len(candles)

    async def _write(self, candles: Sequence[CandleData], stmt: Any) -> None:
        if not candles:
            return
        await self.ensure_partitions(self._partitions_for(candles))
        # Sorted by key so concurrent writers lock rows in the same order (no deadlocks).
        ordered = sorted(candles, key=lambda c: (c.asset_id, c.interval.value, c.bucket_start))
        async with self._sessionmaker() as s, s.begin():
            for i in range(0, len(ordered), _UPSERT_BATCH):
                await s.execute(stmt.values([c.row() for c in ordered[i : i + _UPSERT_BATCH]]))

    async def derive(
        self,
        asset_id: str,
        start: datetime,
        end: datetime,
        finest: CandleInterval = CandleInterval.ONE_MINUTE,
    ) -> int:
        """Recompute the intervals coarser than ``finest`` over the buckets holding
        ``[start, end]``, each from the next finer one (1m → 5m → 1h → 1d), replacing them:
        after a backfill of ``finest`` bars."""
        total = 0
        for finer, coarser in itertools.pairwise(INTERVALS):
            if finer.seconds < finest.seconds:
                continue
            lo, hi = coarser.floor(start), coarser.floor(end) + coarser.step
            await self.ensure_partitions(partitions_between(coarser, lo, hi))
            # In the database (INSERT … SELECT): no rows travel to Python.
            stmt = text(_DERIVE_SQL).bindparams(
                bindparam("starts", type_=ARRAY(DateTime(timezone=True))),
                bindparam("ends", type_=ARRAY(DateTime(timezone=True))),
            )
            async with self._sessionmaker() as s, s.begin():
                result = await s.execute(
                    stmt,
                    {
                        "coarser": coarser.value,
                        "stride": timedelta(seconds=coarser.seconds),
                        "starts": [lo],
                        "ends": [hi],
                        "asset": asset_id,
                        "finer": finer.value,
                    },
                )
                total += int(getattr(result, "rowcount", 0) or 0)
        return total

    # ---- reading --------------------------------------------------------------------------

    async def stored(
        self, asset_id: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> list[CandleData]:
        """Stored candles of one interval with ``start <= bucket_start < end``."""
        async with self._sessionmaker() as s:
            rows = await s.execute(
                text(
                    "SELECT * FROM candles WHERE asset_id = :a AND interval = :i "
                    "AND bucket_start >= :s AND bucket_start < :e ORDER BY bucket_start"
                ),
                {"a": asset_id, "i": interval.value, "s": start, "e": end},
            )
            return [_candle_from_row(r, interval) for r in rows]

    async def _rollup_rows(
        self,
        asset_id: str,
        finer: CandleInterval,
        coarser: CandleInterval,
        spans: Sequence[tuple[datetime, datetime]],
    ) -> list[CandleData]:
        stmt = text(_ROLLUP_SQL).bindparams(
            bindparam("starts", type_=ARRAY(DateTime(timezone=True))),
            bindparam("ends", type_=ARRAY(DateTime(timezone=True))),
        )
        async with self._sessionmaker() as s:
            rows = await s.execute(
                stmt,
                {
                    "stride": timedelta(seconds=coarser.seconds),
                    "starts": [a for a, _ in spans],
                    "ends": [b for _, b in spans],
                    "asset": asset_id,
                    "finer": finer.value,
                },
            )
            return sorted(
                (_candle_from_row(r, coarser) for r in rows), key=lambda c: c.bucket_start
            )

    async def history(
        self, asset_id: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> list[CandleData]:
        """Candles of ``interval`` for buckets in ``[floor(start), end)``: stored ones, and where
        a bucket has none, rolled up from the coarsest finer interval that has data there."""
        lo = interval.floor(start)
        found = {c.bucket_start: c for c in await self.stored(asset_id, interval, lo, end)}
        for finer in interval.finer():
            gaps = _gaps(lo, end, interval, found.keys())
            if not gaps:
                break
            for c in await self._rollup_rows(asset_id, finer, interval, gaps):
                found.setdefault(c.bucket_start, c)
        return [found[k] for k in sorted(found)]

    async def last_daily_close(
        self, symbols: Sequence[str], before: datetime
    ) -> dict[str, Decimal]:
        """Each symbol's latest stored close of a 1d candle starting before ``before``."""
        if not symbols:
            return {}
        stmt = text(
            "SELECT DISTINCT ON (asset_id) asset_id, close FROM candles "
            "WHERE interval = '1d' AND asset_id = ANY(:a) AND bucket_start < :b "
            "ORDER BY asset_id, bucket_start DESC"
        ).bindparams(bindparam("a", type_=ARRAY(String)))
        async with self._sessionmaker() as s:
            rows = await s.execute(stmt, {"a": list(symbols), "b": before})
            return {r.asset_id: r.close for r in rows}

    async def close_at(self, symbols: Sequence[str], at: datetime) -> dict[str, Decimal]:
        """Each symbol's last 1m close strictly before ``at`` (within the prior 7 days)."""
        if not symbols:
            return {}
        stmt = text(
            "SELECT DISTINCT ON (asset_id) asset_id, close FROM candles "
            "WHERE interval = '1m' AND asset_id = ANY(:a) AND bucket_start < :b "
            "AND bucket_start >= :since ORDER BY asset_id, bucket_start DESC"
        ).bindparams(bindparam("a", type_=ARRAY(String)))
        async with self._sessionmaker() as s:
            rows = await s.execute(
                stmt, {"a": list(symbols), "b": at, "since": at - timedelta(days=7)}
            )
            return {r.asset_id: r.close for r in rows}

    # ---- retention ------------------------------------------------------------------------

    async def apply_retention(self, now: datetime) -> RetentionReport:
        """Drop partitions wholly older than each interval's cutoff; delete older rows from the
        partition straddling it."""
        dropped: list[str] = []
        deleted = 0
        async with self._sessionmaker() as s, s.begin():
            conn = await s.connection()
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PARTITION_LOCK_ID})
            for p in await existing_partitions(conn):
                cutoff = self.retention.cutoff(p.interval, now)
                if cutoff is None:
                    continue
                if p.end <= cutoff:
                    await conn.execute(text(f"DROP TABLE {PARTITION_SCHEMA}.{p.name}"))
                    dropped.append(p.name)
                    self._known.discard(p)
                elif p.start < cutoff:
                    # p.name is rebuilt from a parsed (interval, date), never taken as given.
                    sql = f"DELETE FROM {PARTITION_SCHEMA}.{p.name} WHERE bucket_start < :c"  # noqa: S608
                    result = await conn.execute(text(sql), {"c": cutoff})
                    deleted += int(getattr(result, "rowcount", 0) or 0)
        return RetentionReport(dropped, deleted)


def _gaps(
    lo: datetime, hi: datetime, interval: CandleInterval, have: Iterable[datetime]
) -> list[tuple[datetime, datetime]]:
    """Maximal spans of ``[lo, hi)`` made of buckets missing from ``have``."""
    spans: list[tuple[datetime, datetime]] = []
    cursor = lo
    for b in sorted(have):
        if b > cursor:
            spans.append((cursor, b))
        cursor = max(cursor, b + interval.step)
    if cursor < hi:
        spans.append((cursor, hi))
    return spans


def candle_count(interval: CandleInterval, start: datetime, end: datetime) -> int:
    """How many buckets of ``interval`` ``[floor(start), end)`` spans."""
    lo = interval.floor(start)
    return max(0, math.ceil((end - lo) / interval.step))


# Default span of a history request without dates: what a chart at that resolution shows.
DEFAULT_SPAN = {
    CandleInterval.ONE_MINUTE: timedelta(days=1),
    CandleInterval.FIVE_MINUTES: timedelta(days=7),
    CandleInterval.ONE_HOUR: timedelta(days=31),
    CandleInterval.ONE_DAY: timedelta(days=366),
}


def history_range(
    interval: CandleInterval,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    max_candles: int,
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a history request covers (naive datetimes are UTC; missing ends
    default to now and to ``DEFAULT_SPAN`` before the end), or a DomainError:
    ``INVALID_DATE_RANGE`` when start is not before end, ``RANGE_TOO_LARGE`` past
    ``max_candles`` buckets."""
    end = _aware(end) if end is not None else now
    start = _aware(start) if start is not None else end - DEFAULT_SPAN[interval]
    if start >= end:
        raise DomainError.one(
            ErrorCode.INVALID_DATE_RANGE, "startDate must be before endDate.", "startDate"
        )
    if candle_count(interval, start, end) > max_candles:
        raise DomainError.one(
            ErrorCode.RANGE_TOO_LARGE,
            f"At most {max_candles} candles per request: use a shorter range or a coarser "
            "interval.",
            "interval",
        )
    return start, end


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
