"""Price-alert evaluation at feed speed (issue 15).

Part 1, the index alone (``AlertIndex``, in memory): 1,000,000 active alerts over 500 assets
(2,000 each, half "above", half "below", levels spread ±40 % around the price), then random-walk
ticks through ``crossed``; prints the build time, the memory the index holds (RSS growth) and
ticks evaluated per second (fired alerts leave the index, as in the evaluator).

Part 2, tick → inbox row committed: the real ``Evaluator`` (as ``python -m workers.alerts``
runs it) on a scratch database and Redis prefix, subscribed to the quote channels, with the
1,000,000 in-memory alerts of part 1 loaded beside ``--real`` alerts stored in PostgreSQL (50
assets, ladders just above the price so a rising walk keeps firing some). Ticks are published
exactly as the market-data feed publishes them (``write_quotes(publish=True)``) at the demo
feed rate (42 assets x 2 ticks/s = 84 ticks/s) and at 10x, each for ``--seconds``; the latency
of a firing is from the publish of the tick that crossed it to the return of the claim (its
notification row committed). Publisher and evaluator share one process and event loop.

    .venv/bin/python bench/alerts_eval.py [--alerts 1000000] [--assets 500] [--ticks 200000]
        [--seconds 10] [--real 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_settings
from bench.stats import median, percentile
from models.assets import Asset, AssetClass
from models.notifications import AlertCondition, AlertStatus, PriceAlert
from models.notifications.alert_index import AlertIndex
from models.quotes import QuoteData, write_quotes
from models.services import open_services
from models.users import User
from workers.alerts import Evaluator

DEMO_TICKS_PER_SECOND = 42 * 2


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fill_index(index: AlertIndex, alerts: int, assets: int, rng: random.Random) -> list[str]:
    symbols = [f"B{i:04d}" for i in range(assets)]
    per = alerts // assets
    for symbol in symbols:
        for j in range(per):
            above = j % 2 == 0
            offset = Decimal(rng.randint(100, 4000)) / 100  # 1.00 .. 40.00 away from 100
            level = Decimal(100) + offset if above else Decimal(100) - offset
            index.add(f"{symbol}:{j}", symbol, above=above, level=level)
    return symbols


def part_one(args: argparse.Namespace) -> AlertIndex:
    rng = random.Random(15)
    before = rss_mib()
    started = time.perf_counter()
    index = AlertIndex()
    symbols = fill_index(index, args.alerts, args.assets, rng)
    built = time.perf_counter() - started
    held = rss_mib() - before
    prices = dict.fromkeys(symbols, Decimal(100))
    ticks = []
    for _ in range(args.ticks):  # precomputed: the loop below measures the index only
        s = rng.choice(symbols)
        prices[s] = max(Decimal("1.00"), prices[s] + Decimal(rng.randint(-5, 5)) / 100)
        ticks.append((s, prices[s]))
    fired = 0
    started = time.perf_counter()
    for s, p in ticks:
        fired += len(index.crossed(s, p))
    took = time.perf_counter() - started
    print(
        f"index: {len(index) + fired:,} alerts over {args.assets} assets built in {built:.1f} s;"
        f" memory held {held:.0f} MiB ({held * 1024 * 1024 / args.alerts:.0f} B/alert)"
    )
    print(
        f"index: {args.ticks:,} ticks in {took:.2f} s = {args.ticks / took:,.0f} ticks/s "
        f"evaluated ({fired} fired; {took / args.ticks * 1e6:.1f} µs/tick)"
    )
    return index


async def part_two(args: argparse.Namespace, padding: AlertIndex) -> None:
    async with scratch_settings("alerts") as settings:
        assert settings.database_url
        assert settings.redis_url
        async with open_services(
            settings, settings.database_url, settings.redis_url, pool_size=4
        ) as services:
            symbols = [f"R{i:03d}" for i in range(50)]
            user_id = uuid.uuid4()
            now = datetime.now(UTC)
            async with services.sessionmaker.begin() as s:
                s.add(
                    User(id=user_id, username="bench", email="bench@example.com", password_hash="x")
                )
                await s.flush()
                s.add_all(
                    Asset(
                        symbol=sym,
                        name=sym,
                        asset_class=AssetClass.EQUITY,
                        currency="USD",
                        tick_size=Decimal("0.01"),
                        quantity_increment=Decimal("0.000001"),
                        fractionable=True,
                        tradable=True,
                        market_calendar="24x7",
                        reference_price=Decimal(100),
                        collar_bps=500,
                    )
                    for sym in symbols
                )
                await s.flush()
                per = args.real // len(symbols)
                s.add_all(
                    PriceAlert(
                        id=uuid.uuid4(),
                        user_id=user_id,
                        asset_id=sym,
                        condition=AlertCondition.PRICE_ABOVE,
                        threshold=Decimal(100) + Decimal(j + 1) / 10,
                        repeat=False,
                        cooldown_seconds=3600,
                        status=AlertStatus.ACTIVE,
                        fired=0,
                        armed_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                    for sym in symbols
                    for j in range(per)
                )
            sent: dict[tuple[str, Decimal], float] = {}
            latencies: list[float] = []
            claim = services.alerts.claim

            async def timed_claim(pairs, at=None):  # type: ignore[no-untyped-def]
                won = await claim(pairs, at)  # returns after the commit
                done = time.perf_counter()
                price_of = dict(pairs)
                for f in won:
                    t0 = sent.get((f.alert.asset_id, price_of[f.alert.id]))
                    if t0 is not None:
                        latencies.append(done - t0)
                return won

            services.alerts.claim = timed_claim  # type: ignore[method-assign]
            evaluator = Evaluator(services.alerts, services.notifier)
            stop = asyncio.Event()
            task = asyncio.create_task(
                evaluator.run(services.redis, settings.redis_prefix, stop, base_refresh=3600)
            )
            await asyncio.wait_for(evaluator.ready.wait(), 30)
            # the 1M in-memory alerts of part 1 beside the real ones (their levels are never
            # reached by this walk's 50 assets: a different universe)
            await evaluator.rebuild_into(padding)
            print(
                f"evaluator: {len(evaluator.index):,} alerts indexed "
                f"({args.real} in PostgreSQL, rest in memory)"
            )
            rng = random.Random(7)
            prices = dict.fromkeys(symbols, Decimal(100))
            for rate in (DEMO_TICKS_PER_SECOND, DEMO_TICKS_PER_SECOND * 10):
                latencies.clear()
                fired_before = evaluator.fired
                interval = 1 / rate
                count = int(rate * args.seconds)
                started = time.perf_counter()
                for n in range(count):
                    s_ = rng.choice(symbols)
                    prices[s_] = prices[s_] + Decimal(rng.randint(-2, 4)) / 100
                    quote = QuoteData(s_, prices[s_], None, None, datetime.now(UTC))
                    sent[(s_, prices[s_])] = time.perf_counter()
                    await write_quotes(services.redis, settings.redis_prefix, [quote], publish=True)
                    delay = started + (n + 1) * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                offered = count / (time.perf_counter() - started)
                await asyncio.sleep(1.0)  # the last firings
                fired = evaluator.fired - fired_before
                print(
                    f"rate {rate} ticks/s (offered {offered:.0f}/s for {args.seconds} s): "
                    f"{fired} alerts fired; tick -> inbox row committed p50 "
                    f"{median(latencies) * 1000:.1f} ms, p99 "
                    f"{percentile(latencies, 0.99) * 1000:.1f} ms, max "
                    f"{max(latencies, default=float('nan')) * 1000:.1f} ms"
                )
            stop.set()
            await asyncio.wait_for(task, 10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--real", type=int, default=2000)
    parser.add_argument("--index-only", action="store_true")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    index = part_one(args)
    if not args.index_only:
        asyncio.run(part_two(args, index))


if __name__ == "__main__":
    main()
