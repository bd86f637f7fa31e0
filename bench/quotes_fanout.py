"""Quote fan-out: tick-to-subscriber latency with many websocket subscribers on one API process.

    .venv/bin/python bench/quotes_fanout.py [--subscribers 1000] [--assets 10] [--rate 5]
                                            [--seconds 20] [--runs 3]

One API process (uvicorn, websockets-sansio, as ``bourse up`` runs it) is started as a child
process; this process opens ``--subscribers`` websocket connections, each subscribing to
``quotes`` for one of ``--assets`` assets (so each quote fans out to subscribers / assets
clients), then publishes quotes the way the feed does (``write_quotes(publish=True)``: SET +
PUBLISH in one MULTI/EXEC) for each asset ``--rate`` times a second. A quote carries its publish
time; latency is receive time minus that (same machine, same clock), so it covers Redis, the
API's hub, Strawberry, the websocket and the client's JSON parsing. Prints p50/p99/max per run,
how many quotes were delivered and how many were conflated (published x subscribers of the
asset - delivered, the hub merging quotes for a subscriber that had not taken the previous one
yet), and the median over the runs.

Uses DATABASE_URL / REDIS_URL when set (else the embedded servers under var/bench), in a scratch
database dropped afterwards and a scratch Redis key prefix deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

from redis.asyncio import Redis  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import median, percentile  # noqa: E402
from bourse.settings import Settings  # noqa: E402
from models.assets import AssetClass, Assets, NewAsset  # noqa: E402
from models.db import create_engine, create_sessionmaker  # noqa: E402
from models.quotes import QuoteData, write_quotes  # noqa: E402
from tests.support.server import free_port  # noqa: E402

QUOTES = "subscription($ids: [String!]!) { quotes(assetIds: $ids) { assetId price timestamp } }"


@dataclass
class Client:
    symbol: str
    conn: ClientConnection
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    measuring: bool = False


async def serve(port: int) -> None:
    """The child: one API process, as `bourse up` runs it."""
    import uvicorn

    from bff.app import create_app
    from bourse.process import ApiServer, freeze_heap

    settings = Settings()
    assert settings.database_url
    assert settings.redis_url
    app = create_app(settings, settings.database_url, settings.redis_url)
    server = ApiServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            ws="websockets-sansio",
            backlog=4096,
            ws_per_message_deflate=os.environ.get("BENCH_DEFLATE") == "1",
        )
    )
    freeze_heap()  # as the API's processes do (bourse.process)
    await server.serve()


async def open_client(url: str, symbol: str) -> Client:
    conn = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await conn.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await conn.recv())["type"] == "connection_ack"
    payload = {"query": QUOTES, "variables": {"ids": [symbol]}}
    await conn.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = json.loads(await conn.recv())
    assert first["type"] == "next", first
    return Client(symbol, conn)


async def read(client: Client) -> None:
    async for raw in client.conn:
        now = time.time()
        msg = json.loads(raw)
        if msg.get("type") != "next" or not client.measuring:
            continue
        quote = msg["payload"]["data"]["quotes"]
        client.received += 1
        client.latencies.append(now - datetime.fromisoformat(quote["timestamp"]).timestamp())


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (Linux /proc), or of this one."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process (Linux /proc), MiB; NaN when unknown."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def one_run(
    url: str,
    redis: Redis,
    prefix: str,
    symbols: list[str],
    args: argparse.Namespace,
    server_pid: int | None = None,
) -> dict[str, float]:
    started = time.perf_counter()
    rss_before = rss_mib(server_pid)
    clients: list[Client] = []
    for i in range(0, args.subscribers, 50):
        batch = range(i, min(i + 50, args.subscribers))
        clients += await asyncio.gather(
            *(open_client(url, symbols[k % len(symbols)]) for k in batch)
        )
    setup = time.perf_counter() - started
    readers = [asyncio.create_task(read(c)) for c in clients]
    await asyncio.sleep(0.5)
    # What each open subscription costs the API in memory (the websockets-per-node figure of
    # bench/capacity.py): the API's resident memory with them open, minus before.
    rss_open = rss_mib(server_pid)
    per_socket_kib = (rss_open - rss_before) * 1024 / max(1, args.subscribers)
    for c in clients:
        c.measuring = True
    published = 0
    server_cpu, client_cpu = cpu_seconds(server_pid), cpu_seconds()
    # Each asset ticks on its own schedule, staggered (as the feed's jittered ticks are), so a
    # publish reaches subscribers / assets clients at once.
    interval = 1 / (args.rate * len(symbols))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    n = 0
    while loop.time() - t0 < args.seconds:
        symbol = symbols[n % len(symbols)]
        n += 1
        price = Decimal(100) + Decimal(n) / 100
        quote = QuoteData(symbol, price, None, None, datetime.now(UTC))
        await write_quotes(redis, prefix, [quote], publish=True)
        published += 1
        await asyncio.sleep(max(0.0, t0 + n * interval - loop.time()))
    await asyncio.sleep(2.0)  # let the last quotes arrive
    wall = loop.time() - t0
    server_load = (cpu_seconds(server_pid) - server_cpu) / wall
    client_load = (cpu_seconds() - client_cpu) / wall
    for c in clients:
        c.measuring = False
    for c in clients:
        await c.conn.close()
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    latencies = sorted(x for c in clients for x in c.latencies)
    delivered = sum(c.received for c in clients)
    per_asset = args.subscribers / len(symbols)
    expected = int(published * per_asset)
    result = {
        "setup_s": setup,
        "p50_ms": median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "published": published,
        "delivered": delivered,
        "conflated": expected - delivered,
        "server_cpu": server_load,
        # the API's CPU per quote delivered to a subscriber (µs): what the machine's load
        # does not change, unlike the latency
        "api_us_per_delivery": server_load * wall / max(1, delivered) * 1e6,
        "client_cpu": client_load,
        "api_rss_mib": rss_open,
        "kib_per_subscriber": per_socket_kib,
    }
    print(
        f"{args.subscribers} subscribers, {len(symbols)} assets x {args.rate}/s for "
        f"{args.seconds:.0f} s (connect {setup:.1f} s): p50 {result['p50_ms']:.1f} ms  "
        f"p99 {result['p99_ms']:.1f} ms  max {result['max_ms']:.1f} ms  published {published}  "
        f"delivered {delivered}/{expected}  conflated {expected - delivered}  "
        f"CPU: API {server_load:.0%} ({result['api_us_per_delivery']:.0f} µs/delivery), "
        f"clients {client_load:.0%}  "
        f"API RSS {rss_before:.0f} -> {rss_open:.0f} MiB ({per_socket_kib:.0f} KiB/subscriber)",
        flush=True,
    )
    return result


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings("bench-quotes") as settings:
        db_url, redis_url, prefix = settings.database_url, settings.redis_url, settings.redis_prefix
        assert db_url
        assert redis_url
        redis = Redis.from_url(redis_url)
        child: asyncio.subprocess.Process | None = None
        try:
            engine = create_engine(db_url, pool_size=1)

            async def no_market(assets: Any) -> None:
                return None

            assets = Assets(create_sessionmaker(engine), no_market)
            symbols = [f"B{i:03d}" for i in range(args.assets)]
            for s in symbols:
                await assets.create(
                    NewAsset(s, s, AssetClass.CRYPTO, "USD", "0.01", True, True, "100.00")
                )
            await engine.dispose()
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": db_url,
                "REDIS_URL": redis_url,
                "BOURSE_REDIS_PREFIX": prefix,
                "BOURSE_ENV": "test",
                "BOURSE_SECRET_KEY": "bench",
                "BOURSE_LOG_LEVEL": "WARNING",
            }
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", str(port), env=env
            )
            url = f"ws://127.0.0.1:{port}/graphql"
            for _ in range(200):
                try:
                    probe = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
                    await probe.close()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            results = [
                await one_run(url, redis, prefix, symbols, args, child.pid)
                for _ in range(args.runs)
            ]
            if len(results) > 1:
                med = {k: median([r[k] for r in results]) for k in results[0]}
                print(
                    f"median of {len(results)} runs: p50 {med['p50_ms']:.1f} ms  "
                    f"p99 {med['p99_ms']:.1f} ms  max {med['max_ms']:.1f} ms  "
                    f"delivered {med['delivered']:.0f}  conflated {med['conflated']:.0f}  "
                    f"API {med['api_us_per_delivery']:.0f} µs/delivery"
                )
        finally:
            if child is not None and child.returncode is None:
                child.terminate()
                await child.wait()
            await redis.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--assets", type=int, default=10)
    ap.add_argument("--rate", type=float, default=5.0, help="quotes per asset per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parsed = ap.parse_args()
    if parsed.serve and os.environ.get("BENCH_PROFILE"):
        import cProfile
        import signal

        profiler = cProfile.Profile()
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        profiler.enable()
        try:
            asyncio.run(serve(parsed.serve))
        except KeyboardInterrupt:
            pass
        finally:
            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
    elif parsed.serve:
        asyncio.run(serve(parsed.serve))
    else:
        asyncio.run(main(parsed))
