"""Matching shard benchmark: commands per second through Redis streams.

    .venv/bin/python bench/matching_shard.py [--commands 200000] [--runs 3] [--batch 1000]

Preloads the input stream of shard 0 (pipelined XADD, not timed) with the same realistic mix
as ``bench/matching_core.py``, then times one shard draining it: XREADGROUP COUNT batches,
apply, and per batch one MULTI/EXEC that XADDs every event, XACKs the batch, sets the applied
id and publishes the changed books. ``--mode process`` (default) runs the shard as its own
process (``python -m matching.shard``, as deployed) and times it from outside, from its first
commit to its last, by polling the applied id; ``--mode inline`` runs ``Shard.run`` in this
process instead. Uses REDIS_URL (default redis://127.0.0.1:6379/0) and deletes its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bourse.keys import applied_key, events_key, input_key  # noqa: E402
from matching.core import CORE_KIND  # noqa: E402
from matching.loadgen import OrderFlow  # noqa: E402
from matching.shard import Shard, ShardConfig  # noqa: E402
from matching.wire import COMMAND_FIELD, encode_command, new_order  # noqa: E402


async def preload(r: Redis, prefix: str, payloads: list[str]) -> str:
    key = input_key(prefix, 0)
    last = ""
    for i in range(0, len(payloads), 5000):
        pipe = r.pipeline(transaction=False)
        for s in payloads[i : i + 5000]:
            pipe.xadd(key, {COMMAND_FIELD: s})
        last = (await pipe.execute())[-1]
    return last


async def clean(r: Redis, prefix: str) -> None:
    keys = [k async for k in r.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 500):
        await r.delete(*keys[i : i + 500])


async def run_inline(r: Redis, prefix: str, batch: int, last: str) -> tuple[float, int, int]:
    """The shard's own loop (``Shard.run``) in this process, timed from its first commit."""
    cfg = ShardConfig(
        shard=0, shards=1, prefix=prefix, batch_size=batch, snapshot_every=0, snapshot_interval=0
    )
    shard = Shard(cfg, redis=r)
    task = asyncio.create_task(shard.run())
    while not shard.commands:
        await asyncio.sleep(0.001)
    t = time.perf_counter()
    n0 = shard.commands
    while shard.applied != last:
        await asyncio.sleep(0.002)
    dt = time.perf_counter() - t
    shard.stop()
    await task
    return dt, shard.commands - n0, shard.events


async def probe_latency(r: Redis, prefix: str, samples: int) -> list[float]:
    """Round trips of single commands through an idle shard: XADD a passive limit order, wait
    (XREAD BLOCK on the events stream) for its ACCEPTED event. Milliseconds."""
    in_key, ev_key = input_key(prefix, 0), events_key(prefix, 0)
    last = (await r.xrevrange(ev_key, count=1) or [("0-0", {})])[0][0]
    out: list[float] = []
    for i in range(samples):
        cmd = new_order(
            f"probe-{i}",
            "probe-user",
            "SYM0",
            "BUY",
            "LIMIT",
            "GTC",
            quantity=1,
            price=100 + i % 50,
            ts=i,
        )
        t = time.perf_counter()
        eid = await r.xadd(in_key, {COMMAND_FIELD: encode_command(cmd)})
        done = False
        while not done:
            for _, rows in await r.xread({ev_key: last}, block=1000):
                for rid, fields in rows:
                    last = rid
                    done = done or f'"input_id":"{eid}"' in fields["event"]
        out.append((time.perf_counter() - t) * 1000)
    return out


async def run_process(
    r: Redis, url: str, prefix: str, batch: int, last: str, probes: int
) -> tuple[float, int, list[float]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "matching.shard",
            "--shard",
            "0",
            "--shards",
            "1",
            "--redis-url",
            url,
            "--prefix",
            prefix,
            "--batch-size",
            str(batch),
            "--snapshot-every",
            "0",
            "--snapshot-interval",
            "0",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        t = None
        while True:
            applied = await r.get(applied_key(prefix, 0))
            if t is None and applied is not None:
                t = time.perf_counter()  # first batch committed: the shard is up
            if applied == last:
                break
            await asyncio.sleep(0.002)
        assert t is not None
        dt = time.perf_counter() - t
        events = await r.xlen(events_key(prefix, 0))
        return dt, events, await probe_latency(r, prefix, probes)
    finally:
        proc.terminate()
        proc.wait(30)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--commands", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--mode", choices=["inline", "process"], default="process")
    ap.add_argument("--probes", type=int, default=2000, help="idle round trips (process mode)")
    args = ap.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    r = Redis.from_url(url, decode_responses=True)
    flow = OrderFlow(seed=1, assets=4, users=500)
    payloads = [encode_command(c) for c in flow.setup(depth=250) + flow.commands(args.commands)]
    print(f"core: {CORE_KIND} (the shard process inherits BOURSE_PURE_CORE)")
    print(
        f"workload: {len(payloads):,} commands (realistic mix, 4 books), batch {args.batch}, "
        f"mode {args.mode}, redis {url}"
    )
    rates: list[float] = []
    latencies: list[list[float]] = []
    for run in range(args.runs):
        prefix = f"bench-{uuid.uuid4().hex[:10]}:"
        try:
            last = await preload(r, prefix, payloads)
            if args.mode == "inline":
                dt, n, events = await run_inline(r, prefix, args.batch, last)
            else:
                dt, events, lat = await run_process(r, url, prefix, args.batch, last, args.probes)
                latencies.append(sorted(lat))
                n = len(payloads) - args.batch  # timed from the first commit
            rates.append(n / dt)
            print(
                f"  run {run + 1}: {n:,} commands, {events:,} events in {dt:.2f}s = "
                f"{n / dt:,.0f} commands/s ({events / dt:,.0f} events/s)"
            )
        finally:
            await clean(r, prefix)
    print(
        f"\nshard through Redis streams (median of {args.runs}): "
        f"{statistics.median(rates):,.0f} commands/s"
    )
    if latencies and args.probes:

        def pct(q: float) -> float:
            return statistics.median(v[min(len(v) - 1, int(q * len(v)))] for v in latencies)

        print(
            f"single-command round trip, idle shard (XADD → ACCEPTED read back, median of "
            f"{len(latencies)}): p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, "
            f"p99.9 {pct(0.999):.2f} ms"
        )
    await r.aclose()


if __name__ == "__main__":
    asyncio.run(main())
