"""Candle aggregation (pure) and the idempotent writer and sink (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from models.candle_partitions import Partition
from models.candle_store import CandleStore, candle_count
from models.candles import CandleInterval, PricePoint, Watermark, aggregate, roll_up
from models.services import Services
from workers.marketdata.candles import CandleSink, fill_sequence
from workers.marketdata.providers import Tick, Trade

M1, M5, H1, D1 = (
    CandleInterval.ONE_MINUTE,
    CandleInterval.FIVE_MINUTES,
    CandleInterval.ONE_HOUR,
    CandleInterval.ONE_DAY,
)
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def symbol() -> str:
    return f"C{uuid.uuid4().hex[:8].upper()}"


# A known sequence over two minutes: reference ticks (no size) and trades (size, sequence).
SEQUENCE = [
    PricePoint("X", at(0.5), D("100.00")),
    PricePoint("X", at(10), D("101.50"), D("2"), 1),
    PricePoint("X", at(20), D("99.25")),
    PricePoint("X", at(30), D("100.75"), D("3.5"), 2),
    PricePoint("X", at(59.999), D("100.10")),
    PricePoint("X", at(60), D("102.00"), D("1"), 3),
    PricePoint("X", at(90), D("98.00")),
    PricePoint("X", at(119), D("99.00"), D("0.25"), 4),
]


def test_aggregate_known_sequence_exact_ohlcv() -> None:
    candles = aggregate(SEQUENCE)
    first = candles[("X", M1, T0)]
    assert (first.open, first.high, first.low, first.close) == (
        D("100.00"), D("101.50"), D("99.25"), D("100.10"),
    )  # fmt: skip
    assert first.volume == D("5.5")
    assert first.notional == D("101.50") * 2 + D("100.75") * D("3.5")
    second = candles[("X", M1, at(60))]
    assert (second.open, second.high, second.low, second.close, second.volume) == (
        D("102.00"), D("102.00"), D("98.00"), D("99.00"), D("1.25"),
    )  # fmt: skip
    for interval in (M5, H1, D1):
        c = candles[("X", interval, interval.floor(T0))]
        assert (c.open, c.high, c.low, c.close, c.volume) == (
            D("100.00"), D("102.00"), D("98.00"), D("99.00"), D("6.75"),
        )  # fmt: skip
        assert c.last_trade_seq == 4
        assert c.last_tick_ts == at(90)
    assert len(candles) == 5


def test_aggregate_orders_by_time_and_reference_ticks_carry_no_volume() -> None:
    shuffled = list(reversed(SEQUENCE))
    assert aggregate(shuffled) == aggregate(SEQUENCE)
    ticks_only = aggregate([p for p in SEQUENCE if p.size is None], [M1])
    assert all(c.volume == 0 and c.last_trade_seq is None for c in ticks_only.values())


def test_aggregate_skips_what_the_watermarks_say_is_stored() -> None:
    marks = {("X", M1, T0): Watermark(last_tick_ts=at(20), last_trade_seq=1)}
    c = aggregate(SEQUENCE, [M1], marks)[("X", M1, T0)]
    # Left: the trade #2 at 30s and the tick at 59.999s.
    assert (c.open, c.high, c.low, c.close, c.volume) == (
        D("100.75"), D("100.75"), D("100.10"), D("100.10"), D("3.5"),
    )  # fmt: skip


def test_aggregate_refuses_bad_ticks() -> None:
    with pytest.raises(ValueError, match="timezone"):
        aggregate([PricePoint("X", datetime(2026, 1, 1), D(1))])
    with pytest.raises(ValueError, match="bad tick"):
        aggregate([PricePoint("X", T0, D(0))])


def test_roll_up_equals_direct_aggregation() -> None:
    minutes = [c for c in aggregate(SEQUENCE, [M1]).values()]
    rolled = roll_up(minutes, H1)
    direct = aggregate(SEQUENCE, [H1])[("X", H1, H1.floor(T0))]
    assert len(rolled) == 1
    r = rolled[0]
    assert (r.open, r.high, r.low, r.close, r.volume, r.bucket_start) == (
        direct.open, direct.high, direct.low, direct.close, direct.volume, direct.bucket_start,
    )  # fmt: skip


def test_buckets_and_partitions() -> None:
    t = datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert M1.floor(t) == datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    assert M5.floor(t) == datetime(2026, 10, 31, 23, 55, tzinfo=UTC)
    assert D1.floor(t) == datetime(2026, 10, 31, tzinfo=UTC)
    assert Partition.holding(M1, t).name == "candles_1m_202610"
    assert Partition.holding(M1, t + timedelta(microseconds=1)).name == "candles_1m_202611"
    assert Partition.holding(D1, t).name == "candles_1d_2026"
    dec = Partition.holding(M5, datetime(2026, 12, 31, tzinfo=UTC))
    assert dec.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert Partition.parse("candles_1m_202610") == Partition.holding(M1, t)
    assert Partition.parse("candles_1m_2026") is None
    assert Partition.parse("candles_1x_202610") is None
    assert candle_count(M1, T0, T0 + timedelta(days=1)) == 1440
    assert candle_count(D1, T0, T0 + timedelta(hours=1)) == 1


def test_fill_sequence() -> None:
    assert fill_sequence("AAPL:42") == 42
    assert fill_sequence("BRK.B:7") == 7
    assert fill_sequence("nonsense") is None


async def stored(
    store: CandleStore, sym: str, interval: CandleInterval
) -> list[tuple[object, ...]]:
    rows = await store.stored(sym, interval, T0 - timedelta(days=2), T0 + timedelta(days=2))
    return [(c.bucket_start, c.open, c.high, c.low, c.close, c.volume) for c in rows]


async def test_record_is_idempotent_under_replays_and_straddling_batches(
    services: Services,
) -> None:
    store = services.candles
    sym = symbol()
    seq = [PricePoint(sym, p.ts, p.price, p.size, p.seq) for p in SEQUENCE]
    # In two batches, the second overlapping the first.
    await store.record(seq[:5])
    await store.record(seq[3:])
    once = {i: await stored(store, sym, i) for i in (M1, M5, H1, D1)}
    assert once[M1] == [
        (T0, D("100.00"), D("101.50"), D("99.25"), D("100.10"), D("5.5")),
        (at(60), D("102.00"), D("102.00"), D("98.00"), D("99.00"), D("1.25")),
    ]
    assert once[D1] == [(D1.floor(T0), D("100"), D("102"), D("98"), D("99"), D("6.75"))]
    # Replaying everything, in any batching, changes nothing.
    await store.record(seq)
    await store.record(list(reversed(seq)))
    for i in (M1, M5, H1, D1):
        assert await stored(store, sym, i) == once[i]
    # New trades are added.
    await store.record([PricePoint(sym, at(120), D("97.5"), D("10"), 5)])
    m1 = await stored(store, sym, M1)
    assert m1[-1] == (at(120), D("97.5"), D("97.5"), D("97.5"), D("97.5"), D("10"))
    d1 = await stored(store, sym, D1)
    assert d1 == [(D1.floor(T0), D("100"), D("102"), D("97.5"), D("97.5"), D("16.75"))]


async def test_concurrent_duplicate_batches_count_once(services: Services) -> None:
    sym = symbol()
    batch = [PricePoint(sym, at(i), D(100 + i), D(1), i + 1) for i in range(10)]
    await asyncio.gather(*(services.candles.record(batch) for _ in range(4)))
    rows = await stored(services.candles, sym, M1)
    assert rows == [(T0, D(100), D(109), D(100), D(109), D(10))]


async def test_late_trade_widens_range_without_moving_the_close(services: Services) -> None:
    sym = symbol()
    await services.candles.record([PricePoint(sym, at(30), D(50), D(1), 2)])
    # A reference tick earlier than the stored open becomes the open.
    await services.candles.record([PricePoint(sym, at(5), D(49))])
    [(_, o, h, lo, c, v)] = await stored(services.candles, sym, M1)
    assert (o, h, lo, c, v) == (D(49), D(50), D(49), D(50), D(1))


async def test_sink_buffers_ticks_and_writes_trades(services: Services) -> None:
    sym = symbol()
    sink = CandleSink(services.candles, flush_interval=3600)
    await sink.on_ticks([Tick(sym, at(1), D("10.00"), D("500"))])  # provider size: not ours
    assert await stored(services.candles, sym, M1) == []  # buffered
    await sink.on_trades(
        [Trade(sym, f"{sym}:1", at(2), D("10.50"), D("3"), "BUY"),
         Trade(sym, f"{sym}:2", at(3), D("9.75"), D("1"), "SELL")]
    )  # fmt: skip
    assert await stored(services.candles, sym, M1) == [
        (T0, D("10.00"), D("10.50"), D("9.75"), D("9.75"), D(4))
    ]
    # The feed delivers trades at least once: a redelivery adds nothing.
    await sink.on_trades([Trade(sym, f"{sym}:2", at(3), D("9.75"), D("1"), "SELL")])
    await sink.on_ticks([Tick(sym, at(4), D("9.90"))])
    await sink.aclose()
    assert await stored(services.candles, sym, M1) == [
        (T0, D("10.00"), D("10.50"), D("9.75"), D("9.90"), D(4))
    ]


async def test_partitions_are_created_on_demand(services: Services) -> None:
    sym = symbol()
    t = datetime(2026, 10, 31, 23, 59, 30, tzinfo=UTC)
    await services.candles.record(
        [
            PricePoint(sym, t, D(1), D(1), 1),
            PricePoint(sym, t + timedelta(minutes=1), D(2), D(1), 2),
        ]
    )
    async with services.sessionmaker() as s:
        names = set(
            (
                await s.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'candle_partitions'")
                )
            ).scalars()
        )
    assert {
        "candles_1m_202610",
        "candles_1m_202611",
        "candles_5m_202611",
        "candles_1d_2026",
    } <= names
