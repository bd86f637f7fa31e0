"""Vendor-feed ticks/s through the Alpaca adapter into quotes (issue 18's bench list).

    .venv/bin/python bench/vendor_ticks.py [--duration 10] [--symbols 20] [--batch 50]

A local server speaking Alpaca's protocol (``tests/market/alpaca_server.py``) pushes trades as
fast as it can (arrays of ``--batch`` data points) to the real ``AlpacaProvider`` feeding the
real ``MarketDataFeed`` in this process (one matching shard in-process, the scratch database
and Redis prefix). Printed: data points pushed per second, ticks the feed took per second
(fewer when the adapter conflates for a slower feed: newest tick per symbol), and quotes
written to Redis per second (the feed writes each changed quote every 20 ms, so at most
symbols x 50 per second).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

from redis.asyncio import Redis  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bourse.keys import quote_channel  # noqa: E402
from tests.market.alpaca_server import AlpacaServer, trade  # noqa: E402
from tests.market.feed_helpers import (  # noqa: E402
    create_asset,
    database,
    feed_settings,
    running_feed,
    running_shards,
)
from workers.marketdata.vendor import AlpacaProvider  # noqa: E402

KEY, SECRET = "BENCH", "bench-secret"


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings("bench-vendor") as base, AlpacaServer(KEY, SECRET) as server:
        assert base.redis_url
        settings = feed_settings(base, base.redis_prefix)
        redis = Redis.from_url(base.redis_url)
        provider = AlpacaProvider(KEY, SECRET, stocks_url=server.url, crypto_url=server.url)
        async with (
            database(settings) as sessionmaker,
            running_shards(base.redis_url, base.redis_prefix),
        ):
            symbols = [
                (await create_asset(settings, redis, sessionmaker, price="100.00")).symbol
                for _ in range(args.symbols)
            ]
            async with running_feed(settings, provider, sessionmaker) as feed:
                for s in symbols:
                    await server.wait_subscribed(s)
                pubsub = redis.pubsub()
                await pubsub.subscribe(*(quote_channel(settings.redis_prefix, s) for s in symbols))
                quotes = 0

                async def count() -> None:
                    nonlocal quotes
                    async for m in pubsub.listen():
                        if m.get("type") == "message":
                            quotes += 1

                counter = asyncio.create_task(count())
                pushed, ticks_before = 0, feed.stats.ticks
                start = time.monotonic()
                i = 0
                while time.monotonic() - start < args.duration:
                    i += 1
                    batch = [
                        trade(symbols[(i + k) % len(symbols)], f"{100 + (i % 500) / 100:.2f}")
                        for k in range(args.batch)
                    ]
                    await server.push(*batch)
                    pushed += len(batch)
                    await asyncio.sleep(0)
                await asyncio.sleep(0.5)  # the last quotes
                wall = time.monotonic() - start
                counter.cancel()
                await pubsub.aclose()
                took = feed.stats.ticks - ticks_before
                print(f"{args.symbols} symbols, {wall:.1f} s")
                print(f"pushed by the server  {pushed / wall:10.0f} data points/s")
                conflated = provider.buffer.replaced if provider.buffer else 0
                print(f"taken by the feed     {took / wall:10.0f} ticks/s ({conflated} conflated)")
                print(f"quotes published      {quotes / wall:10.0f} /s")
                print(f"malformed {provider.stats.malformed}, connects {provider.stats.connects}")
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
