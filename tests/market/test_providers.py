"""Price providers: the seeded GBM feed, the CSV replay and the provider selection."""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bourse.app.demo.ticks import SAMPLE_SYMBOLS, sample_instruments, write_sample
from bourse.settings import Settings
from models.calendars import ALWAYS_OPEN, US_EQUITY, calendar
from workers.marketdata.providers import Instrument, PriceProvider
from workers.marketdata.replay import SAMPLE_PATH, ReplayFormatError, ReplayProvider, read_ticks
from workers.marketdata.selection import import_object, load_provider
from workers.marketdata.synthetic import SECONDS_PER_CALENDAR_YEAR, SyntheticProvider

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, US market open


def btc(volatility: float = 0.55) -> Instrument:
    return Instrument("BTC-USD", Decimal("91250.00"), Decimal("0.01"), ALWAYS_OPEN, volatility)


def aapl() -> Instrument:
    return Instrument("AAPL", Decimal("232.50"), Decimal("0.01"), US_EQUITY, 0.25)


def test_gbm_is_deterministic_for_a_seed() -> None:
    one = list(itertools.islice(SyntheticProvider(seed=7).generate([btc(), aapl()], START), 500))
    two = list(itertools.islice(SyntheticProvider(seed=7).generate([btc(), aapl()], START), 500))
    other = list(itertools.islice(SyntheticProvider(seed=8).generate([btc(), aapl()], START), 500))
    assert one == two
    assert [t.price for t in one] != [t.price for t in other]
    # An asset's path does not depend on which other assets are simulated with it.
    alone = [t for t in itertools.islice(SyntheticProvider(seed=7).generate([aapl()], START), 100)]
    assert alone == [t for t in one if t.symbol == "AAPL"][:100]


def test_gbm_ticks_are_on_the_grid_in_time_order_with_sizes() -> None:
    ticks = list(itertools.islice(SyntheticProvider(seed=1).generate([btc(), aapl()], START), 400))
    assert [t.timestamp for t in ticks] == sorted(t.timestamp for t in ticks)
    for t in ticks:
        assert t.price > 0
        assert t.price == t.price.quantize(Decimal("0.01"))
        assert t.size is not None
        assert t.size > 0
        if t.symbol == "AAPL":
            assert t.size == t.size.to_integral_value()  # whole shares


def test_gbm_statistics_are_plausible() -> None:
    """Log returns scaled by sqrt(dt) have the asset's volatility, no drift; ~2 ticks/s."""
    provider = SyntheticProvider(seed=42, ticks_per_second=2.0)
    ticks = list(itertools.islice(provider.generate([btc(0.80)], START), 20_000))
    times = [t.timestamp for t in ticks]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert statistics.mean(gaps) == pytest.approx(0.5, rel=0.03)
    assert min(gaps) >= 0.25 - 1e-6
    assert max(gaps) <= 0.75 + 1e-6  # jitter: between half and 1.5 times the mean gap
    normalised = []
    for (a, b), gap in zip(itertools.pairwise(ticks), gaps, strict=True):
        r = math.log(float(b.price) / float(a.price))
        normalised.append(r / math.sqrt(gap / SECONDS_PER_CALENDAR_YEAR))
    assert statistics.stdev(normalised) == pytest.approx(0.80, rel=0.05)
    # Zero drift: the mean normalised return is within a few standard errors of 0.
    assert abs(statistics.mean(normalised)) < 4 * 0.80 / math.sqrt(len(normalised))


def test_equities_wait_for_the_open_unless_always_tick() -> None:
    saturday = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    closed = SyntheticProvider(seed=3, always_tick=False)
    first = next(iter(closed.generate([aapl()], saturday)))
    assert first.timestamp >= datetime(2026, 1, 12, 14, 30, tzinfo=UTC)  # Monday 09:30 NY
    assert calendar(US_EQUITY).is_open(first.timestamp)
    # Crypto ticks at the weekend either way; with always_tick (the default) equities too.
    assert next(iter(closed.generate([btc()], saturday))).timestamp < saturday + timedelta(
        seconds=1
    )
    always = SyntheticProvider(seed=3)
    assert next(iter(always.generate([aapl()], saturday))).timestamp < saturday + timedelta(
        seconds=1
    )


async def test_synthetic_stream_is_paced_by_the_clock() -> None:
    provider = SyntheticProvider(seed=5, ticks_per_second=20.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = []
    async for tick in provider.ticks([btc()]):
        got.append(tick)
        if len(got) == 10:
            break
    elapsed = loop.time() - started
    assert 0.25 < elapsed < 2.0  # ten ticks at ~20/s
    assert got[-1].timestamp - got[0].timestamp == pytest.approx(
        timedelta(seconds=elapsed), abs=timedelta(seconds=0.3)
    )


def test_sample_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    rows = list(read_ticks(SAMPLE_PATH))
    assert 1000 <= len(rows) <= 5000
    assert {t.symbol for t in rows} == set(SAMPLE_SYMBOLS)
    assert [t.timestamp for t in rows] == sorted(t.timestamp for t in rows)
    again = tmp_path / "sample.csv"
    write_sample(again, len(rows), 20260105)
    assert again.read_text() == SAMPLE_PATH.read_text()  # reproducible from the script
    assert {i.symbol for i in sample_instruments()} == set(SAMPLE_SYMBOLS)


async def test_replay_reads_the_sample_keeping_timestamps() -> None:
    provider = ReplayProvider(SAMPLE_PATH, speed=0, loop=False, rebase=False)
    wanted = [i for i in sample_instruments() if i.symbol in {"AAPL", "BTC-USD"}]
    got = [t async for t in provider.ticks(wanted)]
    expected = [t for t in read_ticks(SAMPLE_PATH) if t.symbol in {"AAPL", "BTC-USD"}]
    assert len(got) == len(expected) > 100
    assert [(t.symbol, t.timestamp, t.price, t.size) for t in got] == [
        (t.symbol, t.timestamp, t.price, t.size) for t in expected
    ]


async def test_replay_rebases_to_now_and_loops() -> None:
    provider = ReplayProvider(SAMPLE_PATH, speed=0, loop=True)
    per_pass = sum(1 for t in read_ticks(SAMPLE_PATH) if t.symbol == "SPY")
    before = datetime.now(UTC)
    got = []
    async for tick in provider.ticks([i for i in sample_instruments() if i.symbol == "SPY"]):
        got.append(tick)
        if len(got) == per_pass + 5:
            break
    assert got[0].timestamp >= before - timedelta(seconds=1)
    assert got[0].timestamp < before + timedelta(seconds=5)
    assert got[per_pass].price == got[0].price  # the second pass starts over ...
    assert got[per_pass].timestamp > got[per_pass - 1].timestamp  # ... later in time


async def test_replay_paces_at_the_requested_speed(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "timestamp,symbol,price\n"
        "2026-01-05T15:00:00Z,BTC-USD,100.004\n"
        "2026-01-05T15:00:01Z,BTC-USD,101\n"
        "2026-01-05T15:00:02Z,BTC-USD,102\n"
    )
    provider = ReplayProvider(path, speed=4.0, loop=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = [t async for t in provider.ticks([btc()])]
    assert 0.4 < loop.time() - started < 1.5  # 2 s of data at 4x
    assert [t.price for t in got] == [Decimal("100.00"), Decimal("101.00"), Decimal("102.00")]
    assert got[2].timestamp - got[0].timestamp == timedelta(seconds=0.5)


async def test_replay_turns_bars_into_ticks(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        "1767625200,BTC-USD,100,110,95,105,400\n"
        "1767625260,BTC-USD,105,106,90,91,80\n"
    )
    provider = ReplayProvider(path, speed=0, loop=False, rebase=False)
    got = [t async for t in provider.ticks([btc()])]
    assert [str(t.price) for t in got] == [
        "100.00", "95.00", "110.00", "105.00",  # up bar: open, low, high, close
        "105.00", "106.00", "90.00", "91.00",  # down bar: open, high, low, close
    ]  # fmt: skip
    assert got[0].timestamp == datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    assert got[1].timestamp - got[0].timestamp == timedelta(seconds=15)
    assert got[0].size == Decimal(100)


def test_replay_refuses_unknown_layouts(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,what\n1,2\n")
    with pytest.raises(ReplayFormatError):
        list(read_ticks(path))
    with pytest.raises(FileNotFoundError):
        ReplayProvider(tmp_path / "missing.csv")


def test_provider_selection_by_setting(settings: Settings) -> None:
    synthetic = load_provider(settings.model_copy(update={"marketdata_seed": 9}))
    assert isinstance(synthetic, SyntheticProvider)
    assert synthetic.seed == 9
    replay = load_provider(settings.model_copy(update={"marketdata_provider": "replay"}))
    assert isinstance(replay, ReplayProvider)
    assert replay.path == SAMPLE_PATH
    # Any dotted path to a factory(settings) -> PriceProvider: how a vendor adapter plugs in.
    dotted = load_provider(
        settings.model_copy(
            update={"marketdata_provider": "tests.market.test_providers:make_test_provider"}
        )
    )
    assert isinstance(dotted, PriceProvider)
    assert import_object("workers.marketdata.replay.SAMPLE_PATH") == SAMPLE_PATH
    with pytest.raises(TypeError):
        load_provider(settings.model_copy(update={"marketdata_provider": "math:pi"}))


def make_test_provider(settings: Settings) -> PriceProvider:
    return SyntheticProvider(seed=1)
