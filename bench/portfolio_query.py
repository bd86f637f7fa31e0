"""`portfolio` query latency over HTTP for 10, 100 and 200 holdings: p50 and p99 per size,
the median of 3 runs (each run: `--requests` sequential queries after a warm-up).

    .venv/bin/python bench/portfolio_query.py [--requests 300] [--runs 3] [--profile 100]
        [--sizes 10 100 200]

The query asks for every holding's value fields plus the totals (what a portfolio screen
shows). Half the assets have a live quote in Redis, half fall back to their reference price.
Uses DATABASE_URL / REDIS_URL when set (else the embedded servers under var/bench), in a
scratch database dropped at the end and a Redis prefix deleted at the end. The API runs in this
process (one event loop for server and client), so figures include the client's share of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import median, percentile, profiled  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.process import ApiServer, freeze_heap  # noqa: E402
from bourse.settings import Settings  # noqa: E402
from models.assets import Asset, AssetClass  # noqa: E402
from models.positions import apply_fill  # noqa: E402
from models.quotes import QuoteData, write_quotes  # noqa: E402
from models.services import Services, open_services  # noqa: E402
from tests.support.server import free_port  # noqa: E402

SIZES = (10, 100, 200)
QUERY = """{ portfolio { id totalValue holdingsValue cash assets { assetId quantity averageCost
  price currentValue currentValueBase unrealizedPnl realizedPnl } } }"""


async def holdings(services: Services, user_id: uuid.UUID, n: int) -> None:
    """n assets (half quoted live) and one buy of each, through `apply_fill`."""
    tag = uuid.uuid4().hex[:5].upper()
    symbols = [f"B{tag}{i}" for i in range(n)]
    async with services.sessionmaker.begin() as s:
        s.add_all(
            Asset(symbol=sym, name=sym, asset_class=AssetClass.EQUITY, currency="USD",
                  tick_size=Decimal("0.01"), quantity_increment=Decimal("0.000001"),
                  fractionable=True, tradable=True, market_calendar="24x7",
                  reference_price=Decimal("100"), collar_bps=500)
            for sym in symbols
        )  # fmt: skip
    async with services.sessionmaker.begin() as s:
        for i, sym in enumerate(symbols):
            await apply_fill(
                s, user_id=user_id, asset_id=sym, side="BUY", quantity=Decimal("1.5"),
                price=Decimal("99.5"), fill_id=f"bench-{tag}-{i}", executed_at=datetime.now(UTC),
            )  # fmt: skip
    now = datetime.now(UTC)
    await write_quotes(
        services.redis,
        services.settings.redis_prefix,
        [QuoteData(sym, Decimal("101.25"), None, None, now) for sym in symbols[: n // 2]],
    )


async def register(http: httpx.AsyncClient) -> tuple[str, uuid.UUID]:
    creds = {"email": f"pq.{uuid.uuid4().hex[:10]}@example.com", "password": "Bench-Pass-42"}
    await http.post("/graphql", json={
        "query": "mutation($i: RegisterInput!){register(input:$i){errors{code}}}",
        "variables": {"i": {**creds, "username": f"pq{uuid.uuid4().hex[:10]}"}},
    })  # fmt: skip
    r = await http.post("/graphql", json={
        "query": "mutation($i: LoginInput!){login(input:$i){token user{id}}}",
        "variables": {"i": creds},
    })  # fmt: skip
    login = r.json()["data"]["login"]
    return login["token"], uuid.UUID(login["user"]["id"])


async def bench(
    settings: Settings,
    services: Services,
    requests: int,
    runs: int,
    profile: int = 0,
    sizes: tuple[int, ...] = SIZES,
) -> None:
    from bff.app import create_app

    assert settings.database_url
    assert settings.redis_url
    port = free_port()
    app = create_app(settings, settings.database_url, settings.redis_url)
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    freeze_heap()  # as the API's processes do (bourse.process)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            print(f"{requests} sequential `portfolio` queries per run, median of {runs} runs")
            for n in sizes:
                token, user = await register(http)
                await holdings(services, user, n)
                headers = {"Authorization": f"Bearer {token}"}

                async def once(n: int = n, headers: dict[str, str] = headers) -> float:
                    start = time.perf_counter()
                    r = await http.post("/graphql", json={"query": QUERY}, headers=headers)
                    elapsed = time.perf_counter() - start
                    body = r.json()
                    assert "errors" not in body, body
                    assert len(body["data"]["portfolio"]["assets"]) == n
                    return elapsed

                for _ in range(20):  # warm-up: caches, pool, default portfolio
                    await once()
                p50s, p99s, rates, cpus = [], [], [], []
                for _ in range(runs):
                    start, cpu = time.perf_counter(), time.process_time()
                    ordered = sorted([await once() for _ in range(requests)])
                    rates.append(requests / (time.perf_counter() - start))
                    # CPU of this process (server and client) per query: what the load of a
                    # shared machine does not change, unlike the latency
                    cpus.append((time.process_time() - cpu) / requests * 1000)
                    p50s.append(median(ordered) * 1000)
                    p99s.append(percentile(ordered, 0.99) * 1000)
                print(
                    f"{n:>4} holdings  p50 {median(p50s):7.2f} ms  "
                    f"p99 {median(p99s):7.2f} ms  "
                    f"{median(rates):6.0f} queries/s  CPU {median(cpus):6.2f} ms/query"
                )
                if profile and n == sizes[-1]:
                    print(f"\ncProfile of {profile} queries of {n} holdings (server and client):")
                    print(await profiled(profile, once, top=35))
    finally:
        server.should_exit = True
        await task


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings() as settings:
        assert settings.database_url
        assert settings.redis_url
        async with open_services(
            settings, settings.database_url, settings.redis_url, pool_size=5
        ) as services:
            await bench(
                settings, services, args.requests, args.runs, args.profile, tuple(args.sizes)
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="queries per run and size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profile", type=int, default=0, help="then profile this many queries of the largest size"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="holdings")
    configure_logging("WARNING")  # one access line per request would dominate the figures
    asyncio.run(main(parser.parse_args()))
