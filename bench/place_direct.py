"""placeOrder's PostgreSQL part alone: ``OrderBook.place`` through its ORM transaction against
the one-round-trip statement (``models.orders.direct``), alternated in one process, so the
machine's noise hits both the same way. Prints orders/s, p50/p99 and this process's CPU per
order (``time.process_time``: the Python side of a placement, without PostgreSQL's) for each.

    .venv/bin/python bench/place_direct.py [--orders 2000] [--concurrency 16] [--rounds 3]

No matching shard runs: the commands are appended to the shard's input stream and stay there
(the XADD is still paid). Uses DATABASE_URL / REDIS_URL when set (else the embedded servers),
in a scratch database and Redis key prefix removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

from bench.orders_http import SYMBOL, make_traders  # noqa: E402
from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import median, percentile  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from models.assets import AssetClass, NewAsset  # noqa: E402
from models.orders import OrderSubType, PlaceOrderRequest, Side, TimeInForce  # noqa: E402
from models.services import open_services  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    async with (
        scratch_settings("bench-place", argon2_memory_kib=1024, argon2_time_cost=1) as settings,
    ):
        assert settings.database_url
        assert settings.redis_url
        async with open_services(settings, settings.database_url, settings.redis_url) as services:
            await services.assets.upsert_many(
                [
                    NewAsset(
                        symbol=SYMBOL, name="Bench Corp", asset_class=AssetClass.EQUITY,
                        currency="USD", tick_size="0.01", fractionable=True, tradable=True,
                        reference_price="100.00", market_calendar="24x7",
                    )
                ]
            )  # fmt: skip
            traders = await make_traders(services, args.users)
            book = services.orders
            direct = book._direct
            req = PlaceOrderRequest(
                asset_id=SYMBOL,
                side=Side.BUY,
                sub_type=OrderSubType.LIMIT,
                time_in_force=TimeInForce.GTC,
                quantity="1",
                price="80.00",
            )
            # One order per user first: the asset row and the accounts are then known.
            for t in traders:
                await book.place(t.user_id, req)

            async def burst(label: str) -> tuple[float, float, float, float]:
                latencies: list[float] = []
                counter = iter(range(args.orders))
                started, cpu = time.perf_counter(), time.process_time()

                async def client() -> None:
                    for i in counter:
                        t0 = time.perf_counter()
                        await book.place(traders[i % len(traders)].user_id, req)
                        latencies.append(time.perf_counter() - t0)

                await asyncio.gather(*(client() for _ in range(args.concurrency)))
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                rate = args.orders / wall
                p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
                per = cpu * 1000 / args.orders
                print(
                    f"  {label:<22} {rate:6.0f} orders/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                    f"  CPU {per:.2f} ms/order (this process)"
                )
                return rate, p50, p99, per

            results: dict[str, list[tuple[float, float, float, float]]] = {}
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds}")
                for label, use in (("transaction (ORM)", None), ("one round trip", direct)):
                    book._direct = use
                    results.setdefault(label, []).append(await burst(label))
            book._direct = direct
            async with services.sessionmaker() as s:
                problems = await services.ledger.check(s)
            print(f"ledger check: {len(problems)} differences")
            print(
                f"medians of {args.rounds} rounds, {args.orders} orders, {args.concurrency} at once"
            )
            for label, rows in results.items():
                rate, p50, p99, per = (median([row[k] for row in rows]) for k in range(4))
                print(
                    f"  {label:<22} {rate:6.0f} orders/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                    f"  CPU {per:.2f} ms/order"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=50)
    configure_logging("WARNING")
    asyncio.run(run(parser.parse_args()))
