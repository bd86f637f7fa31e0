"""The candle store: idempotent merges of ticks and trades into stored candles, reads with
roll-ups and gap filling, retention by dropping whole expired partitions (the rules are in
``models.candles``' docstring).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DateTime,
    String,
    bindparam,
    case,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.candle_partitions import (
    PARTITION_LOCK_ID,
    Partition,
    create_partitions,
    existing_partitions,
    partitions_between,
)
from models.candles import (
    INTERVALS,
    PARTITION_SCHEMA,
    Bar,
    Candle,
    CandleData,
    CandleInterval,
    CandleKey,
    TickLike,
    Watermark,
    aggregate,
)
from models.errors import DomainError, ErrorCode

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
# A chart's bars (CandleStore.history): the bucket and OHLCV, the numbers without trailing
# zeros (numeric's text keeps the column's scale: 100.50000000), as plain() shows them.
_CHART_COLUMNS = (
    "bucket_start, trim_scale(open), trim_scale(high), trim_scale(low), trim_scale(close), "
    "trim_scale(volume)"
)
_CHART_SQL = (
    f"SELECT {_CHART_COLUMNS} FROM candles WHERE asset_id = :a AND interval = :i "  # noqa: S608
    "AND bucket_start >= :s AND bucket_start < :e ORDER BY bucket_start"
)


def _chart_rollup() -> Any:
    return text(
        f"SELECT {_CHART_COLUMNS} FROM ({_ROLLUP_SQL}) AS r"  # noqa: S608
    ).bindparams(
        bindparam("starts", type_=ARRAY(DateTime(timezone=True))),
        bindparam("ends", type_=ARRAY(DateTime(timezone=True))),
    )


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
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        # `history` may lag (models/replicas.py); writes and the writers' own reads may not.
        self._reads = reads or sessionmaker
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
        self,
        asset_id: str,
        interval: CandleInterval,
        start: datetime,
        end: datetime,
        *,
        may_lag: bool = False,
    ) -> list[CandleData]:
        """Stored candles of one interval with ``start <= bucket_start < end`` (``may_lag``:
        from a read replica when one is fit)."""
        async with (self._reads if may_lag else self._sessionmaker)() as s:
            rows = await s.execute(
                text(
                    "SELECT * FROM candles WHERE asset_id = :a AND interval = :i "
                    "AND bucket_start >= :s AND bucket_start < :e ORDER BY bucket_start"
                ),
                {"a": asset_id, "i": interval.value, "s": start, "e": end},
            )
            # all(): one fetch for the result, not one per row (a day of 1m is 1,440 rows)
            return [_candle_from_row(r, interval) for r in rows.all()]

    async def history(
        self, asset_id: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> list[Bar]:
        """The chart's bars of ``interval`` for buckets in ``[floor(start), end)``: stored
        candles, and where a bucket has none, rolled up from the coarsest finer interval that
        has data there. Charts may lag by the replicas' bound: read from one when fit.

        Only what a chart shows is read (the bucket and OHLCV: half the columns, the rest is
        never decoded), and its numbers arrive in plain form (``trim_scale`` in SQL: no
        trailing zeros, never an exponent, as ``bourse.money.plain`` shows them): a day of
        one-minute bars is 1,440 rows and 7,200 numbers per request."""
        lo = interval.floor(start)
        async with self._reads() as s:
            rows = await s.execute(
                text(_CHART_SQL),
                {"a": asset_id, "i": interval.value, "s": lo, "e": end},
            )
            found = {r[0]: Bar(asset_id, *r) for r in rows.all()}
        for finer in interval.finer():
            gaps = _gaps(lo, end, interval, found.keys())
            if not gaps:
                break
            async with self._reads() as s:
                rows = await s.execute(
                    _chart_rollup(),
                    {
                        "stride": timedelta(seconds=interval.seconds),
                        "starts": [a for a, _ in gaps],
                        "ends": [b for _, b in gaps],
                        "asset": asset_id,
                        "finer": finer.value,
                    },
                )
                for r in rows.all():
                    found.setdefault(r[0], Bar(asset_id, *r))
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
