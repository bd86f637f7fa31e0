"""The shard as a real process: SIGKILL under load, restart, nothing lost or doubled; SIGTERM
finishes cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bourse import keys
from matching.loadgen import OrderFlow
from matching.shard import Shard, ShardConfig, stream_id
from matching.wire import COMMAND_FIELD, EVENT_FIELD, encode_command, encode_events
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]


def spawn(redis_url: str, prefix: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable, "-m", "matching.shard",
            "--shard", "0", "--shards", "1",
            "--redis-url", redis_url, "--prefix", prefix,
            "--log-level", "INFO",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


async def applied_index(r: Redis, prefix: str, ids: list[str]) -> int:
    """How many of ``ids`` the shard has committed."""
    applied = await r.get(keys.applied_key(prefix, 0))
    if applied is None:
        return 0
    a = stream_id(applied)
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if stream_id(ids[mid]) <= a:
            lo = mid + 1
        else:
            hi = mid
    return lo


async def wait_until(r: Redis, prefix: str, ids: list[str], count: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await applied_index(r, prefix, ids) < count:
        assert loop.time() < deadline, f"shard stuck at {await applied_index(r, prefix, ids)}"
        await asyncio.sleep(0.02)


async def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(
    rds: Redis, redis_url: str, redis_prefix: str
) -> None:
    flow = OrderFlow(seed=42, assets=4, users=200, extras=True)
    commands: list[dict[str, Any]] = flow.setup(depth=50) + flow.commands(24_000)
    in_key = keys.input_key(redis_prefix, 0)
    ids: list[str] = []

    async def feed(chunk: list[dict[str, Any]]) -> None:
        pipe = rds.pipeline(transaction=False)
        for c in chunk:
            pipe.xadd(in_key, {COMMAND_FIELD: encode_command(c)})
        ids.extend(await pipe.execute())

    args = (
        "--batch-size",
        "100",
        "--snapshot-every",
        "2500",
        "--block-ms",
        "50",
        "--lease-ms",
        "1000",
    )
    proc = spawn(redis_url, redis_prefix, *args)
    logs: list[str] = []
    kills = 0
    try:
        # Stream the commands in while the shard works; SIGKILL it twice along the way.
        for start in range(0, len(commands), 1000):
            await feed(commands[start : start + 1000])
            await asyncio.sleep(0.01)
            if kills < 2 and len(ids) >= (kills + 1) * 9000:
                await wait_until(rds, redis_prefix, ids, len(ids) - 1500, timeout=60)
                proc.kill()  # SIGKILL, mid-stream: it is still behind the feeder
                proc.wait(10)
                logs.append(proc.stderr.read().decode() if proc.stderr else "")
                kills += 1
                assert await applied_index(rds, redis_prefix, ids) < len(ids)
                proc = spawn(redis_url, redis_prefix, *args)
        await wait_until(rds, redis_prefix, ids, len(ids), timeout=90)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        logs.append(proc.stderr.read().decode() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert kills == 2
    # Both restarts recovered from a snapshot plus replay (their replayed events matched the
    # stored ones, or they would have refused to start).
    for log in logs[1:]:
        found = re.search(r"recovered: snapshot (\S+), replayed (\d+)", log)
        assert found, log
        assert found.group(1) != "0-0"

    # Same events, byte for byte and in order, as one uninterrupted engine over the input.
    reference = Shard(ShardConfig(shard=0, shards=1, prefix=redis_prefix), redis=rds)
    expected: list[str] = []
    for eid, fields in await rds.xrange(in_key):
        expected.extend(encode_events(reference._apply_one(eid, fields), eid))
    rows = await rds.xrange(keys.events_key(redis_prefix, 0))
    stored = [fields[EVENT_FIELD] for _, fields in rows]
    assert len(stored) == len(expected)
    assert stored == expected
    # every command applied exactly once: (input_id, idx) unique and covering every input
    seen = {(e["input_id"], e["idx"]) for e in map(json.loads, stored)}
    assert len(seen) == len(stored)
    silent = set(ids) - {k[0] for k in seen}  # inputs without events: only these kinds
    kinds = {
        json.loads(f[COMMAND_FIELD])["cmd"] for i, f in await rds.xrange(in_key) if i in silent
    }
    assert kinds <= {"REFERENCE_PRICE", "EXPIRE_DAY"}
    pending = await rds.xpending(in_key, keys.GROUP)
    assert pending["pending"] == 0
    snap = json.loads(await rds.get(keys.snapshot_key(redis_prefix, 0)))
    assert snap["input_id"] == ids[-1]
    assert await rds.exists(keys.heartbeat_key(redis_prefix, 0)) == 0


async def test_sigterm_finishes_and_snapshots(
    rds: Redis, redis_url: str, redis_prefix: str
) -> None:
    proc = spawn(redis_url, redis_prefix, "--block-ms", "50")
    try:
        await eventually(
            lambda: rds.exists(keys.heartbeat_key(redis_prefix, 0)), timeout=10, what="a heartbeat"
        )
        hb = json.loads(await rds.get(keys.heartbeat_key(redis_prefix, 0)))
        assert hb["pid"] == proc.pid
        flow = OrderFlow(seed=1, assets=2, users=20)
        pipe = rds.pipeline(transaction=False)
        for c in flow.setup(depth=10) + flow.commands(500):
            pipe.xadd(keys.input_key(redis_prefix, 0), {COMMAND_FIELD: encode_command(c)})
        ids = await pipe.execute()
        await wait_until(rds, redis_prefix, ids, len(ids), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    snap = json.loads(await rds.get(keys.snapshot_key(redis_prefix, 0)))
    assert snap["input_id"] == ids[-1]
    assert await rds.exists(keys.heartbeat_key(redis_prefix, 0)) == 0
