"""What GraphQL adds to one placeOrder, measured inside the API process.

The same order placed two ways, alternated one by one in one process on one scratch database
and Redis prefix: through the whole ASGI application (`bff.app.create_app`: the middlewares,
Strawberry's view, the schema and its extensions, the `@mutation` base, the resolver, the JSON
answer), called as uvicorn calls it (an HTTP scope, a `receive` that gives the body, a `send`
that collects the answer: no sockets), and by `OrderBook.place` alone (what the bare route of
`orders_http.py` calls). Prints the median CPU per order (this process: `time.process_time`
around each call) of each and the difference, then a cProfile of the GraphQL path, by the
functions that own the difference (the time spent outside `OrderBook.place`).

No shard runs: the orders are limit buys far below the market, accepted by PostgreSQL and sent
to the shard's input stream, where nothing reads them; the scratch prefix is removed at the end.

    .venv/bin/python bench/graphql_overhead.py [--orders 1000] [--concurrency 1] [--profile 300]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import uvloop  # noqa: E402

from bench.orders_http import PLACE, list_asset_unquoted, make_traders  # noqa: E402
from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import median  # noqa: E402
from bff.app import create_app  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.process import freeze_heap  # noqa: E402
from models.orders import OrderSubType, PlaceOrderRequest, Side  # noqa: E402

SYMBOL = "GQLB"
PRICE = "60.00"  # inside the ±50% band around the reference (100), far below the market


class App:
    """The ASGI application driven the way uvicorn drives it, one request at a time."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state  # the lifespan's state, as uvicorn hands it to every request

    async def post(self, body: bytes, token: str) -> dict[str, Any]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"authorization", f"Bearer {token}".encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": self.state,
        }
        sent = False
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        result: dict[str, Any] = json.loads(b"".join(chunks))
        return result


class Lifespan:
    """The application's lifespan (services, hub), started and stopped as uvicorn does."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()
        await self.queue.put({"type": "lifespan.startup"})

        async def receive() -> dict[str, Any]:
            return await self.queue.get()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.failed":
                raise RuntimeError(message.get("message"))
            if message["type"] == "lifespan.startup.complete":
                started.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self.task = asyncio.create_task(self.app(scope, receive, send))
        await asyncio.wait_for(started.wait(), 30)

    async def stop(self) -> None:
        await self.queue.put({"type": "lifespan.shutdown"})
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    async with scratch_settings(
        "bench-gql", access_token_ttl_seconds=6 * 3600, argon2_memory_kib=1024, argon2_time_cost=1
    ) as settings:
        assert settings.database_url
        assert settings.redis_url
        settings = settings.model_copy(
            update={"market_hours": "always", "mutations_per_minute_per_ip": 0}
        )
        database_url, redis_url = settings.database_url, settings.redis_url
        assert database_url
        assert redis_url
        app = create_app(settings, database_url, redis_url)
        state: dict[str, Any] = {}
        running = Lifespan(app, state)
        await running.start()
        client = App(app, state)
        services = app.state.services
        try:
            await list_asset_unquoted(services, (SYMBOL,))
            traders = await make_traders(services, 8, (SYMBOL,))
            freeze_heap()
            inputs = {
                "assetId": SYMBOL, "orderType": "BUY", "orderSubType": "LIMIT",
                "quantity": "1", "price": PRICE,
            }  # fmt: skip
            body = json.dumps({"query": PLACE, "variables": {"input": inputs}}).encode()
            request = PlaceOrderRequest(
                asset_id=SYMBOL,
                side=Side.BUY,
                sub_type=OrderSubType.LIMIT,
                quantity="1",
                price=PRICE,
            )

            async def graphql(i: int) -> None:
                answer = await client.post(body, traders[i % len(traders)].token)
                payload = answer["data"]["placeOrder"]
                if payload["errors"] or payload["order"] is None:
                    raise RuntimeError(f"placeOrder failed: {answer}")

            async def direct(i: int) -> None:
                await services.orders.place(traders[i % len(traders)].user_id, request)

            for i in range(50):  # warm up both (statement caches, the one-trip pool)
                await graphql(i)
                await direct(i)
            cpu: dict[str, list[float]] = {"graphql": [], "direct": []}
            n = args.concurrency
            ways = (("graphql", graphql), ("direct", direct))
            for i in range(0, args.orders, n):
                for name, call in ways[:: 1 - 2 * (i // n % 2)]:
                    start = time.process_time()
                    if n == 1:
                        await call(i)
                    else:  # n requests at once, as a loaded API process has them
                        await asyncio.gather(*(call(i + k) for k in range(n)))
                    cpu[name].append((time.process_time() - start) / n)
            g, d = median(cpu["graphql"]) * 1000, median(cpu["direct"]) * 1000
            print(
                f"{args.orders} orders each way, alternated, {n} at a time;"
                " CPU per order, this process:"
            )
            print(f"  GraphQL (whole app): median {g:.3f} ms")
            print(f"  OrderBook.place:     median {d:.3f} ms")
            print(f"  GraphQL adds {g - d:.3f} ms ({g / d:.2f}x)")
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                for i in range(args.profile):
                    await graphql(i)
                prof.disable()
                out = io.StringIO()
                stats = pstats.Stats(prof, stream=out)
                stats.sort_stats("cumulative").print_stats(45)
                print(f"\ncProfile of {args.profile} GraphQL placeOrders (cumulative):")
                print(out.getvalue())
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
                print(out.getvalue())
                if args.dump:
                    prof.dump_stats(args.dump)
        finally:
            await running.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=1, help="orders placed at once (each way)"
    )
    parser.add_argument("--profile", type=int, default=300, help="0: no profile")
    parser.add_argument("--dump", type=Path, help="save the profile (pstats) here")
    uvloop.run(main(parser.parse_args()))
