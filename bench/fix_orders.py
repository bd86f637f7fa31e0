"""placeOrder through the REST facade and the FIX 4.4 gateway beside GraphQL, in one run:
orders/s and p99, and the ratios (the machine is shared: read the ratios, not the absolutes).

    .venv/bin/python bench/fix_orders.py [--duration 10] [--sessions 8] [--runs 3]

The platform runs as real processes (``tests.support.stack.Stack``: shards, settlement,
liquidity provider, API, and ``python -m workers.fix``). Each of ``--sessions`` customers is
driven closed-loop (one order outstanding) both ways, one after the other, with the same
order: a LIMIT GTC buy resting below the market (no fills, so both paths do the same work in
the engine and the settlement):

- GraphQL: ``placeOrder`` over HTTP; latency = request to response (the order committed and
  sent to its shard);
- REST: ``POST /api/orders`` with the seed's shape, the same bearer token; the same latency;
- FIX: NewOrderSingle on the customer's partner session; latency = NewOrderSingle to the
  ExecutionReport ExecType=0 (New), which FIX sends once the shard accepted the order and the
  settlement logged it (the acknowledgement a FIX partner waits for: more work than the
  GraphQL response, so the FIX/GraphQL latency ratio is an upper bound).

The three paths take turns, ``--runs`` times (GraphQL, REST, FIX, GraphQL, ...), so a change in
the machine's load falls on all of them; each figure is the median over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import httpx  # noqa: E402

from bench.orders_http import REFERENCE, SYMBOL, Trader, list_asset, make_traders  # noqa: E402
from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import percentile  # noqa: E402
from models.services import open_services  # noqa: E402
from tests.fix.client import FixClient, new_order, text  # noqa: E402
from tests.support.server import free_port  # noqa: E402
from tests.support.stack import Stack  # noqa: E402
from workers.fix.gateway import partners_of  # noqa: E402

PLACE = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  order { id status } errors { code } } }"""
FIX_PASSWORD = "bench-fix-password-1"
PRICE = f"{float(REFERENCE) * 0.8:.2f}"  # rests: 20% under the market


async def graphql_worker(base_url: str, trader: Trader, until: float, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        while time.monotonic() < until:
            body = {
                "query": PLACE,
                "variables": {
                    "input": {
                        "assetId": SYMBOL, "orderType": "BUY", "orderSubType": "LIMIT",
                        "quantity": "1", "price": PRICE, "timeInForce": "GTC",
                    }
                },
            }  # fmt: skip
            start = time.perf_counter()
            r = await http.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {trader.token}"}
            )
            doc = r.json()["data"]["placeOrder"]
            if doc["errors"]:
                raise RuntimeError(doc["errors"])
            out.append(time.perf_counter() - start)


async def rest_worker(base_url: str, trader: Trader, until: float, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        body = {"assetId": SYMBOL, "orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1",
                "price": PRICE, "timeInForce": "GTC"}  # fmt: skip
        while time.monotonic() < until:
            start = time.perf_counter()
            r = await http.post(
                "/api/orders", json=body, headers={"Authorization": f"Bearer {trader.token}"}
            )
            if r.status_code != 201:
                raise RuntimeError(r.text)
            out.append(time.perf_counter() - start)


async def fix_worker(port: int, comp_id: str, until: float, out: list[float]) -> None:
    client = FixClient("127.0.0.1", port, comp_id)
    logon = await client.logon(FIX_PASSWORD, reset=True)
    if text(logon, 35) != "A":
        raise RuntimeError(f"logon refused: {text(logon, 58)}")
    try:
        while time.monotonic() < until:
            cl_ord_id = uuid.uuid4().hex
            start = time.perf_counter()
            await client.send("D", new_order(cl_ord_id, SYMBOL, "1", "1", "2", t44=PRICE, t59="1"))
            answer = await client.expect(
                lambda m, c=cl_ord_id: text(m, 35) == "8" and text(m, 11) == c, timeout=60
            )
            if text(answer, 150) != "0":
                raise RuntimeError(f"not accepted: {text(answer, 58)}")
            out.append(time.perf_counter() - start)
    finally:
        await client.close()


def report(name: str, latencies: list[float], seconds: float) -> tuple[float, float]:
    rate = len(latencies) / seconds
    p99 = percentile(latencies, 0.99) if latencies else float("nan")
    p50 = percentile(latencies, 0.50) if latencies else float("nan")
    print(
        f"{name:12} {len(latencies):6d} orders  {rate:8.1f} orders/s  "
        f"p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
    )
    return rate, p99


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings(
        "bench-fix",
        access_token_ttl_seconds=6 * 3600,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        # Each customer here sends hundreds of orders a minute, past the real per-user limit
        # of mutations (RATE_LIMITED): the bench measures the paths, not the limiter.
        mutations_per_minute_per_user=0,
    ) as settings:
        stack = Stack(settings.model_copy(update={"fix_port": free_port()}))
        port = stack.settings.fix_port
        assert port
        try:
            await stack.start_all()
            s = stack.settings
            assert s.database_url
            assert s.redis_url
            async with open_services(s, s.database_url, s.redis_url, pool_size=4) as services:
                await list_asset(services)
                traders = await make_traders(services, args.sessions)
                # The FIX sessions' own customers: a session reports every order event of its
                # customer (a drop copy), so sharing the GraphQL/REST customers would make
                # each FIX logon first send the other paths' thousands of reports.
                fix_traders = await make_traders(services, args.sessions)
                partners = partners_of(services)
                comp_ids = []
                for t in fix_traders:
                    comp_id = f"B{t.user_id.hex[:12].upper()}"
                    await partners.add_partner(comp_id, t.email, FIX_PASSWORD)
                    comp_ids.append(comp_id)
            print(
                f"{args.sessions} customers, closed loop, {args.duration:g} s per path and run, "
                f"{args.runs} runs"
            )
            results: dict[str, list[tuple[float, float]]] = {}
            for run in range(args.runs):
                for name in ("graphql", "rest", "fix"):
                    out: list[float] = []
                    until = time.monotonic() + args.duration
                    start = time.monotonic()
                    if name == "graphql":
                        jobs = [graphql_worker(stack.base_url, t, until, out) for t in traders]
                    elif name == "rest":
                        jobs = [rest_worker(stack.base_url, t, until, out) for t in traders]
                    else:
                        jobs = [fix_worker(port, c, until, out) for c in comp_ids]
                    await asyncio.gather(*jobs)
                    figures = report(f"{name} #{run + 1}", out, time.monotonic() - start)
                    results.setdefault(name, []).append(figures)
            med = {
                name: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
                for name, runs in results.items()
            }
            print("medians:")
            for name, (rate, p99) in med.items():
                print(f"  {name:8} {rate:8.1f} orders/s  p99 {p99 * 1000:7.1f} ms")
            g_rate, g_p99 = med["graphql"]
            for name in ("rest", "fix"):
                rate, p99 = med[name]
                print(
                    f"{name.upper()} / GraphQL: throughput {rate / g_rate:.2f}x, "
                    f"p99 {p99 / g_p99:.2f}x"
                )
        finally:
            await stack.stop_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per path")
    parser.add_argument("--sessions", type=int, default=8, help="customers (FIX sessions)")
    parser.add_argument("--runs", type=int, default=3, help="turns of the three paths")
    asyncio.run(main(parser.parse_args()))
