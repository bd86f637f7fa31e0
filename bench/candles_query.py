"""marketHistory latency over a year of one-minute candles of one asset.

    .venv/bin/python bench/candles_query.py [--runs 50] [--days 365] [--profile 20]

Loads ``--days`` of one-minute candles for one 24/7 asset (525,600 rows for a year) with COPY
into a scratch database (monthly partitions created first), derives the 5m, 1h and 1d candles
from them in SQL (as a backfill does), then times typical chart requests through the service
(``CandleStore.history``) and through GraphQL over HTTP (a real uvicorn in this process):
1 day of 1m, 1 week of 5m, 1 week of 1h, 1 year of 1d, plus 1 week of 1h when only the
minutes are stored (the roll-up path). Prints p50/p99 latency per request and this process's
CPU per request (server and client: what the load of a shared machine does not change).
Uses DATABASE_URL / REDIS_URL when set (else the embedded servers under var/bench); the
scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import median, percentile, profiled  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.process import ApiServer, freeze_heap  # noqa: E402
from models.assets import AssetClass, NewAsset  # noqa: E402
from models.candle_partitions import partitions_between  # noqa: E402
from models.candles import CandleInterval  # noqa: E402
from models.services import Services, open_services  # noqa: E402
from tests.support.server import free_port  # noqa: E402

SYMBOL = "BENCH-USD"
ROLLED = "ROLL-USD"  # only one-minute candles: requests roll up
HISTORY = """query($a: String!, $s: DateTime!, $e: DateTime!, $i: CandleInterval!) {
  marketHistory(assetId: $a, startDate: $s, endDate: $e, interval: $i) {
    data { timestamp open high low close volume } } }"""
COLUMNS = [
    "asset_id", "interval", "bucket_start", "open", "high", "low", "close", "volume",
    "notional", "open_ts", "close_ts", "last_tick_ts", "last_trade_seq",
]  # fmt: skip


def minute_rows(symbol: str, start: datetime, minutes: int, seed: int) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    price = 100.0
    rows: list[tuple[object, ...]] = []
    step = timedelta(minutes=1)
    for m in range(minutes):
        o = price
        price *= math.exp(0.0008 * rng.gauss(0.0, 1.0))
        c = price
        hi, lo = max(o, c) * 1.0004, min(o, c) * 0.9996
        t = start + m * step
        vol = Decimal(rng.randint(1, 500))
        q = [Decimal(f"{x:.2f}") for x in (o, hi, lo, c)]
        rows.append((symbol, "1m", t, *q, vol, vol * q[3], t, t + step - timedelta(microseconds=1),
                     t + step - timedelta(microseconds=1), None))  # fmt: skip
    return rows


async def load(services: Services, symbol: str, start: datetime, days: int, derive: bool) -> None:
    minutes = days * 1440
    for sym in (symbol,):
        await services.assets.create(
            NewAsset(sym, sym, AssetClass.CRYPTO, "USD", "0.01", True, True, "100")
        )
    end = start + timedelta(minutes=minutes)
    await services.candles.ensure_partitions(
        p for i in CandleInterval for p in partitions_between(i, start, end)
    )
    t0 = time.perf_counter()
    rows = minute_rows(symbol, start, minutes, seed=len(symbol))
    async with services.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table("candles", records=rows, columns=COLUMNS)
        await conn.commit()
    t1 = time.perf_counter()
    print(f"{symbol}: {len(rows):,} one-minute candles loaded with COPY in {t1 - t0:.1f} s")
    if derive:
        n = await services.candles.derive(symbol, start, end - timedelta(minutes=1))
        print(f"{symbol}: {n:,} 5m/1h/1d candles derived in {time.perf_counter() - t1:.1f} s")
    async with services.engine.begin() as conn:
        await conn.execute(text("ANALYZE candles"))


def percentiles(latencies: list[float]) -> tuple[float, float]:
    return median(latencies) * 1000, percentile(latencies, 0.99) * 1000


async def timed(runs: int, op: Callable[[], Awaitable[int]]) -> tuple[float, float, float, int]:
    """p50 and p99 latency (ms), CPU of this process per request (ms: server and client, what
    the load of a shared machine does not change) and the number of candles."""
    n = await op()  # warm-up (plans, caches)
    latencies = []
    cpu = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        n = await op()
        latencies.append(time.perf_counter() - t)
    cpu_ms = (time.process_time() - cpu) / runs * 1000
    p50, p99 = percentiles(latencies)
    return p50, p99, cpu_ms, n


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    # Keep every candle (retention would drop the year being measured).
    async with scratch_settings(
        candles_retention_1m_days=0, candles_retention_5m_days=0
    ) as settings:
        url, redis_url = settings.database_url, settings.redis_url
        assert url
        assert redis_url
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=args.days)
        async with open_services(settings, url, redis_url, pool_size=4) as services:
            await load(services, SYMBOL, start, args.days, derive=True)
            await load(services, ROLLED, today - timedelta(days=8), 8, derive=False)
            cases = [
                ("1 day of 1m", SYMBOL, CandleInterval.ONE_MINUTE, timedelta(days=1)),
                ("1 week of 5m", SYMBOL, CandleInterval.FIVE_MINUTES, timedelta(days=7)),
                ("1 week of 1h", SYMBOL, CandleInterval.ONE_HOUR, timedelta(days=7)),
                ("1 year of 1d", SYMBOL, CandleInterval.ONE_DAY, timedelta(days=365)),
                ("1 week of 1h, rolled up from 1m", ROLLED, CandleInterval.ONE_HOUR,
                 timedelta(days=7)),
            ]  # fmt: skip
            from bff.app import create_app

            port = free_port()
            app = create_app(settings, url, redis_url)
            server = ApiServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            freeze_heap()  # as the API's processes do (bourse.process)
            print(f"\n{args.runs} requests each (after one warm-up); latency p50 / p99")
            print(f"{'request':<34} {'candles':>7} {'service':>22} {'GraphQL':>22}  CPU/request")
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=60
                ) as http:
                    for label, sym, interval, span in cases:
                        end = today
                        begin = end - span

                        async def service(
                            sym: str = sym,
                            interval: CandleInterval = interval,
                            begin: datetime = begin,
                            end: datetime = end,
                        ) -> int:
                            return len(await services.candles.history(sym, interval, begin, end))

                        async def graphql(
                            sym: str = sym,
                            interval: CandleInterval = interval,
                            begin: datetime = begin,
                            end: datetime = end,
                        ) -> int:
                            variables = {
                                "a": sym, "s": begin.isoformat(), "e": end.isoformat(),
                                "i": interval.name,
                            }  # fmt: skip
                            r = await http.post(
                                "/graphql", json={"query": HISTORY, "variables": variables}
                            )
                            body = r.json()
                            assert "errors" not in body, body
                            return len(body["data"]["marketHistory"]["data"])

                        s50, s99, scpu, n = await timed(args.runs, service)
                        g50, g99, gcpu, m = await timed(args.runs, graphql)
                        assert n == m, (n, m)
                        print(
                            f"{label:<34} {n:>7} {s50:>9.2f} / {s99:>7.2f} ms "
                            f"{g50:>9.2f} / {g99:>7.2f} ms  CPU {scpu:6.2f} / {gcpu:6.2f} ms"
                        )
                        if args.profile and label == cases[0][0]:
                            for name, op in (("service", service), ("GraphQL", graphql)):
                                print(f"\ncProfile of {args.profile} {label}, {name}:")
                                print(await profiled(args.profile, op))
            finally:
                server.should_exit = True
                await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--profile", type=int, default=0, help="then profile this many of the first request"
    )
    asyncio.run(main(parser.parse_args()))
