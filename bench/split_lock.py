"""What the asset row's FOR KEY SHARE costs placeOrder (models/orders/service.py ``ASSET_LOCK``).

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/split_lock.py [--orders 2000]
        [--concurrency 8] [--rounds 4]

A scratch database and key prefix (bench/scratch.py), one 24x7 asset, 50 funded users
(written straight to the database, as bench/orders_http.py does). ``--orders`` resting limit
buys per mode through ``OrderBook.place`` (validation, the one-statement write, the XADD, the
outbox's sent-marks), ``--concurrency`` at a time, all on the SAME asset row (the lock's worst
case: every placement shares it), with and without the lock, interleaved in ``--rounds``
rounds so drift hits both alike. No shard runs: the commands wait in the stream. Prints each
mode's placements/s and median latency, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import models.orders.service as order_service  # noqa: E402
from bench.orders_http import REFERENCE, SYMBOL, make_traders  # noqa: E402
from bench.scratch import scratch_settings  # noqa: E402
from models.assets import AssetClass, NewAsset  # noqa: E402
from models.orders import OrderSubType, PlaceOrderRequest, Side, TimeInForce  # noqa: E402
from models.services import Services, open_services  # noqa: E402

LOCK = order_service.ASSET_LOCK


async def run(services: Services, users: list[object], n: int, concurrency: int) -> list[float]:
    """``n`` placements, ``concurrency`` at a time; each one's latency (s)."""
    req = PlaceOrderRequest(
        SYMBOL, Side.BUY, OrderSubType.LIMIT, TimeInForce.GTC, quantity="1", price="90.00"
    )
    latencies: list[float] = []
    todo = iter(range(n))

    async def worker(k: int) -> None:
        for i in todo:
            user = users[(i * concurrency + k) % len(users)]
            start = time.perf_counter()
            await services.orders.place(user.user_id, req)  # type: ignore[attr-defined]
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies


async def main(a: argparse.Namespace) -> None:
    async with (
        scratch_settings("splitlock") as settings,
        open_services(
            settings,
            settings.database_url or "",
            settings.redis_url or "",
            pool_size=a.concurrency + 2,
        ) as services,
    ):
        await services.assets.upsert_many(
            [
                NewAsset(
                    symbol=SYMBOL, name="Bench Corp", asset_class=AssetClass.EQUITY,
                    currency="USD", tick_size="0.01", fractionable=True, tradable=True,
                    reference_price=REFERENCE, market_calendar="24x7",
                )
            ]
        )  # fmt: skip
        users: list[object] = list(await make_traders(services, 50))
        order_service.ASSET_LOCK = LOCK
        await run(services, users, 200, a.concurrency)  # warm up
        per = a.orders // a.rounds
        results: dict[str, list[float]] = {"with lock": [], "without": []}
        walls: dict[str, float] = {"with lock": 0.0, "without": 0.0}
        ratios: list[float] = []  # each round's with/without throughput
        for r in range(a.rounds):
            modes = ["with lock", "without"] if r % 2 == 0 else ["without", "with lock"]
            took: dict[str, float] = {}
            for mode in modes:
                order_service.ASSET_LOCK = LOCK if mode == "with lock" else None
                start = time.perf_counter()
                results[mode] += await run(services, users, per, a.concurrency)
                took[mode] = time.perf_counter() - start
                walls[mode] += took[mode]
            ratios.append(took["without"] / took["with lock"])
        order_service.ASSET_LOCK = LOCK
        await services.orders.aclose()
        rate = {m: len(results[m]) / walls[m] for m in results}
        for m in results:
            p50 = statistics.median(results[m]) * 1000
            print(f"{m:10s} {len(results[m])} placements  {rate[m]:7.1f}/s  p50 {p50:.2f} ms")
        print(f"ratio with/without: {rate['with lock'] / rate['without']:.3f} (throughput)")
        spread = ", ".join(f"{x:.2f}" for x in sorted(ratios))
        print(f"per round: median {statistics.median(ratios):.3f} ({spread})")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    asyncio.run(main(p.parse_args()))
