"""marketHistory across partitions and intervals, its errors, backfill and retention."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bourse.app.demo.assets import new_assets
from bourse.settings import Settings
from models.assets import AssetClass, NewAsset
from models.candle_store import CandleStore, Retention
from models.candles import Bar, CandleInterval, PricePoint
from models.services import Services
from tests.support.server import Api
from workers.marketdata.backfill import SAMPLE_BARS_PATH, BackfillError, backfill

M1, M5, H1, D1 = (
    CandleInterval.ONE_MINUTE,
    CandleInterval.FIVE_MINUTES,
    CandleInterval.ONE_HOUR,
    CandleInterval.ONE_DAY,
)
D = Decimal
HISTORY = """query($a: String!, $s: DateTime, $e: DateTime, $i: CandleInterval) {
  marketHistory(assetId: $a, startDate: $s, endDate: $e, interval: $i) {
    assetId interval data { timestamp open high low close volume } } }"""


async def new_asset(services: Services, asset_class: AssetClass = AssetClass.CRYPTO) -> str:
    sym = f"H{uuid.uuid4().hex[:8].upper()}"
    await services.assets.create(
        NewAsset(sym, f"History {sym}", asset_class, "USD", "0.01", True, True, "100")
    )
    return sym


def bars(sym: str, start: datetime, minutes: int, price: int = 100) -> list[Bar]:
    """One-minute bars rising by one each minute, volume 1..n."""
    return [
        Bar(sym, start + timedelta(minutes=m), D(price + m), D(price + m + 2), D(price + m - 1),
            D(price + m + 1), D(m + 1))
        for m in range(minutes)
    ]  # fmt: skip


async def gql_history(api: Api, **variables: Any) -> dict[str, Any]:
    return await api.gql(HISTORY, variables)


async def test_history_across_a_month_boundary(services: Services, api: Api) -> None:
    sym = await new_asset(services)
    start = datetime(2026, 10, 31, 23, 50, tzinfo=UTC)
    await services.candles.replace([b.candle(M1) for b in bars(sym, start, 20)])
    await services.candles.derive(sym, start, start + timedelta(minutes=19))
    body = await gql_history(
        api, a=sym.lower(), s=start.isoformat(), e="2026-11-01T00:10:00Z", i="ONE_MINUTE"
    )
    assert "errors" not in body, body
    history = body["data"]["marketHistory"]
    assert history["assetId"] == sym
    assert history["interval"] == "ONE_MINUTE"
    data = history["data"]
    assert len(data) == 20
    assert data[0]["timestamp"].startswith("2026-10-31T23:50:00")
    assert data[-1]["timestamp"].startswith("2026-11-01T00:09:00")
    assert data[10] == {
        "timestamp": "2026-11-01T00:00:00+00:00", "open": "110", "high": "112", "low": "109",
        "close": "111", "volume": "11",
    }  # fmt: skip
    # Daily candles: one per UTC day, from different yearly/monthly partitions.
    body = await gql_history(
        api, a=sym, s="2026-10-31T00:00:00Z", e="2026-11-02T00:00:00Z", i="ONE_DAY"
    )
    days = body["data"]["marketHistory"]["data"]
    assert [(d["open"], d["high"], d["low"], d["close"], d["volume"]) for d in days] == [
        ("100", "111", "99", "110", str(sum(range(1, 11)))),
        ("110", "121", "109", "120", str(sum(range(11, 21)))),
    ]


async def test_roll_up_from_finer_data_when_the_interval_is_not_stored(
    services: Services,
) -> None:
    sym = await new_asset(services)
    start = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    # Only one-minute candles are stored (no derive): 2.5 hours.
    minutes = bars(sym, start, 150)
    await services.candles.replace([b.candle(M1) for b in minutes])
    hours = await services.candles.history(sym, H1, start, start + timedelta(hours=3))
    assert [(h.timestamp, h.open, h.high, h.low, h.close, h.volume) for h in hours] == [
        (start, D(100), D(161), D(99), D(160), D(sum(range(1, 61)))),
        (start + timedelta(hours=1), D(160), D(221), D(159), D(220), D(sum(range(61, 121)))),
        (start + timedelta(hours=2), D(220), D(251), D(219), D(250), D(sum(range(121, 151)))),
    ]
    # A stored coarse candle wins over finer data for its bucket; the other buckets still
    # roll up (here: from 5m where it exists, else 1m).
    stored_hour = minutes[0].candle(H1)
    stored_hour.open, stored_hour.volume = D(1), D(12345)
    await services.candles.replace([stored_hour])
    five = [b.candle(M5) for b in bars(sym, start + timedelta(hours=1), 1)]
    five[0].bucket_start = start + timedelta(hours=1)
    five[0].open, five[0].volume = D(7), D(7)
    await services.candles.replace(five)
    hours = await services.candles.history(sym, H1, start, start + timedelta(hours=3))
    assert [(h.open, h.volume) for h in hours] == [
        (D(1), D(12345)),
        (D(7), D(7)),  # 5m data was present in that hour: the coarsest finer level wins
        (D(220), D(sum(range(121, 151)))),
    ]
    # No daily candle stored: the day is rolled up from the coarsest finer level holding data
    # in it (here the one stored hour; in normal operation every level is written together,
    # and retention keeps coarser levels longer, so a coarser level is never the thinner one).
    [day] = await services.candles.history(sym, D1, start, start + timedelta(days=1))
    assert (day.open, day.high, day.low, day.close) == (D(1), D(102), D(99), D(101))


async def test_history_errors(api: Api, services: Services) -> None:
    sym = await new_asset(services)
    body = await gql_history(api, a="NOPE-NOT-LISTED", i="ONE_HOUR")
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_ASSET"
    assert body["data"] is None
    body = await gql_history(
        api, a=sym, s="2026-11-02T00:00:00Z", e="2026-11-01T00:00:00Z", i="ONE_HOUR"
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_DATE_RANGE"
    body = await gql_history(
        api, a=sym, s="2025-11-01T00:00:00Z", e="2026-11-01T00:00:00Z", i="ONE_MINUTE"
    )
    assert body["errors"][0]["extensions"]["code"] == "RANGE_TOO_LARGE"
    assert "10000" in body["errors"][0]["message"]
    # At the limit exactly: fine (10,000 hours).
    end = datetime(2026, 11, 1, tzinfo=UTC)
    body = await gql_history(
        api, a=sym, s=(end - timedelta(hours=10_000)).isoformat(), e=end.isoformat(), i="ONE_HOUR"
    )
    assert "errors" not in body, body
    # Defaults: no dates, no interval.
    body = await gql_history(api, a=sym)
    assert "errors" not in body, body
    assert body["data"]["marketHistory"]["interval"] == "ONE_DAY"
    # A malformed date is a validation error, not a 500.
    response = await api.post(HISTORY, {"a": sym, "s": "yesterday"})
    assert response.status_code in (200, 400)
    assert response.json()["errors"]


async def test_live_sink_data_is_served(services: Services, api: Api) -> None:
    sym = await new_asset(services)
    t = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
    await services.candles.record(
        [PricePoint(sym, t, D("10")), PricePoint(sym, t + timedelta(seconds=5), D("11"), D(2), 1)]
    )
    body = await gql_history(
        api, a=sym, s=t.isoformat(), e=(t + timedelta(minutes=5)).isoformat(), i="FIVE_MINUTES"
    )
    assert body["data"]["marketHistory"]["data"] == [
        {"timestamp": "2026-11-03T15:00:00+00:00", "open": "10", "high": "11", "low": "10",
         "close": "11", "volume": "2"},
    ]  # fmt: skip


async def ensure_demo_assets(services: Services) -> None:
    await services.assets.upsert_many(new_assets())


async def test_backfill_loads_the_sample(services: Services) -> None:
    await ensure_demo_assets(services)
    report = await backfill(services, SAMPLE_BARS_PATH)
    assert report.bars == 3000
    assert report.assets == ["AAPL", "BTC-USD", "MSFT", "SPY", "TSLA"]
    lines = SAMPLE_BARS_PATH.read_text().splitlines()[1:]
    aapl = [line.split(",") for line in lines if ",AAPL," in line]
    day = datetime(2026, 10, 30, tzinfo=UTC)
    store = services.candles
    minutes = await store.stored("AAPL", M1, day, day + timedelta(days=1))
    assert len(minutes) == 390
    [daily] = await store.history("AAPL", D1, day, day + timedelta(days=1))
    assert daily.open == D(aapl[0][2])
    assert daily.high == max(D(r[3]) for r in aapl)
    assert daily.low == min(D(r[4]) for r in aapl)
    assert daily.close == D(aapl[-1][5])
    assert daily.volume == sum(D(r[6]) for r in aapl)
    # Stored, not rolled up at read time: the 1d row exists.
    assert len(await store.stored("AAPL", D1, day, day + timedelta(days=1))) == 1
    # BTC-USD crosses into November: two daily candles, 1440 minutes in two partitions.
    btc = await store.history("BTC-USD", D1, day, day + timedelta(days=3))
    assert [c.timestamp.day for c in btc] == [31, 1]
    assert sum(c.volume for c in btc) == sum(
        D(line.split(",")[6]) for line in lines if ",BTC-USD," in line
    )
    # Idempotent: loading again gives the same candles.
    again = await backfill(services, SAMPLE_BARS_PATH, symbol="aapl")
    assert again.bars == 390
    assert again.assets == ["AAPL"]
    [daily_again] = await store.history("AAPL", D1, day, day + timedelta(days=1))
    assert daily_again == daily


async def test_backfill_rejects_bad_files_and_stores_nothing(
    services: Services, tmp_path: Path
) -> None:
    sym = await new_asset(services)
    path = tmp_path / "bars.csv"
    header = "timestamp,symbol,open,high,low,close,volume\n"
    path.write_text(
        header + f"2026-08-03T14:30:00Z,{sym},10,11,9,10.5,100\n"
        f"2026-08-03T14:31:00Z,{sym},10,9,11,10.5,100\n"
    )
    with pytest.raises(BackfillError, match="line 3"):
        await backfill(services, path)
    path.write_text(header + f"2026-08-03T14:30:00Z,{sym},10,11,9,10.5,100\n"
                    "2026-08-03T14:30:00Z,NOT-LISTED-X,10,11,9,10.5,100\n")  # fmt: skip
    with pytest.raises(BackfillError, match="unknown asset NOT-LISTED-X"):
        await backfill(services, path)
    path.write_text(header + f"2026-08-03T14:30:00Z,{sym},10,11,9,10.5,100\n"
                    f"2026-08-03T14:30:30Z,{sym},10,11,9,10.5,100\n")  # fmt: skip
    with pytest.raises(BackfillError, match="second 1m bar"):
        await backfill(services, path)
    path.write_text("time,symbol,price\n")
    with pytest.raises(BackfillError, match="header lacks"):
        await backfill(services, path)
    day = datetime(2026, 8, 3, tzinfo=UTC)
    assert await services.candles.stored(sym, M1, day, day + timedelta(days=1)) == []


async def bourse_cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "BOURSE_REDIS_PREFIX": settings.redis_prefix,
        "BOURSE_VAR_DIR": str(settings.var_dir),
        "BOURSE_SECRET_KEY": settings.secret_key or "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_backfill_command(settings: Settings, services: Services) -> None:
    await ensure_demo_assets(services)
    code, out = await bourse_cli(
        settings, "backfill", "--file", str(SAMPLE_BARS_PATH), "--asset", "SPY"
    )
    assert code == 0, out
    assert "390 1m bars for SPY" in out
    code, out = await bourse_cli(settings, "backfill", "--file", "/nonexistent.csv")
    assert code == 1
    assert "error" in out


async def test_retention_drops_old_partitions_and_rows(services: Services) -> None:
    sym = await new_asset(services)
    store = CandleStore(
        services.sessionmaker,
        Retention({M1: 30, M5: 365, H1: 0, D1: 0}),
    )
    now = datetime(2001, 3, 15, 12, 0, tzinfo=UTC)
    old, edge, recent = (
        datetime(2001, 1, 10, tzinfo=UTC),  # January partition: wholly expired for 1m
        datetime(2001, 2, 1, tzinfo=UTC),  # February: straddles the 1m cutoff (13 Feb)
        datetime(2001, 3, 1, tzinfo=UTC),
    )
    ancient = datetime(1999, 6, 1, tzinfo=UTC)  # 5m expires after a year; 1h/1d never
    candles = [b.candle(i) for i in (M1, M5, H1, D1) for b in bars(sym, ancient, 1)]
    for t in (old, edge, recent):
        candles += [b.candle(M1) for b in bars(sym, t, 3)]
    await store.replace(candles)
    report = await store.apply_retention(now)
    assert "candles_1m_200101" in report.dropped_partitions
    assert "candles_5m_199906" in report.dropped_partitions
    assert "candles_1m_200102" not in report.dropped_partitions
    assert report.deleted_rows >= 3
    span = (ancient - timedelta(days=1), now)
    assert [c.bucket_start for c in await store.stored(sym, M1, *span)] == [
        recent,
        recent + timedelta(minutes=1),
        recent + timedelta(minutes=2),
    ]
    assert await store.stored(sym, M5, *span) == []
    assert len(await store.stored(sym, H1, *span)) == 1
    assert len(await store.stored(sym, D1, *span)) == 1
    async with services.sessionmaker() as s:
        names = set(
            (
                await s.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'candle_partitions'")
                )
            ).scalars()
        )
    assert "candles_1m_200101" not in names
    assert "candles_1m_200102" in names
    # Writing into a dropped period again recreates its partition.
    await store.replace([b.candle(M1) for b in bars(sym, old, 1)])
    assert len(await store.stored(sym, M1, *span)) == 4
    # Clean up the far past so a later run of this test starts the same.
    await store.apply_retention(now + timedelta(days=3650))
