"""The shard runner against a real Redis, in-process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from bourse import keys
from matching import client
from matching.loadgen import OrderFlow
from matching.shard import LeaseLostError, Shard, ShardConfig
from matching.wire import COMMAND_FIELD, EVENT_FIELD, encode_command, encode_events, new_order
from tests.support.polling import current, eventually


async def drain(shard: Shard) -> int:
    total = 0
    while n := await shard.step(None):
        total += n
    return total


async def stored_events(r: Redis, prefix: str, shard: int = 0) -> list[str]:
    rows = await r.xrange(keys.events_key(prefix, shard))
    return [fields[EVENT_FIELD] for _, fields in rows]


async def expected_events(r: Redis, config: ShardConfig) -> list[str]:
    """What an uninterrupted shard makes of the whole input stream."""
    ref = Shard(config, redis=r)
    out: list[str] = []
    for eid, fields in await r.xrange(keys.input_key(config.prefix, config.shard)):
        out.extend(encode_events(ref._apply_one(eid, fields), eid))
    return out


def flow(n: int, seed: int = 7) -> list[dict[str, Any]]:
    f = OrderFlow(seed=seed, assets=3, users=40, extras=True)
    return f.setup(depth=20) + f.commands(n)


async def test_end_to_end_events_book_and_heartbeat(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(shard=0, shards=1, prefix=redis_prefix, batch_size=100, depth_levels=3)
    shard = Shard(cfg, redis=rds)
    await shard.start()
    pubsub = rds.pubsub()
    await pubsub.subscribe(keys.depth_channel(redis_prefix, "SYM0"))
    try:
        commands = flow(1500)
        ids = await client.submit_many(rds, redis_prefix, 1, commands)
        assert len(ids) == len(commands)
        assert await drain(shard) == len(commands)
        assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)
        assert await rds.get(keys.applied_key(redis_prefix, 0)) == ids[-1]
        assert await rds.xpending(keys.input_key(redis_prefix, 0), keys.GROUP) == {
            "pending": 0,
            "min": None,
            "max": None,
            "consumers": [],
        }
        book = await client.read_book(rds, redis_prefix, 1, "SYM0")
        assert book is not None
        engine_bids, engine_asks = shard.engine.depth("SYM0", 3)
        assert len(book["bids"]) == len(engine_bids)
        assert len(book["asks"]) == len(engine_asks)
        if engine_bids:
            assert book["best_bid"] == book["bids"][0][0]
            assert book["bids"][0][2] == engine_bids[0][2]
        assert book["input_id"] <= ids[-1]
        message = await eventually(
            lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1),
            timeout=5,
            what="a depth message",
        )
        assert json.loads(message["data"])["asset_id"] == "SYM0"
        assert await client.shards_alive(rds, redis_prefix, 1) == {0: True}
        assert 0 < await rds.pttl(keys.heartbeat_key(redis_prefix, 0)) <= cfg.heartbeat_ttl_ms
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    await shard.shutdown()
    assert await client.shards_alive(rds, redis_prefix, 1) == {0: False}
    snap = json.loads(await rds.get(keys.snapshot_key(redis_prefix, 0)))
    assert snap["input_id"] == ids[-1]


async def test_recovery_from_snapshot_replay_and_pending(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(
        shard=0, shards=1, prefix=redis_prefix, batch_size=50, lease_ms=1000, block_ms=50
    )
    commands = flow(2000, seed=11)
    await client.submit_many(rds, redis_prefix, 1, commands)
    first = Shard(cfg, redis=rds)
    await first.start()
    for _ in range(10):
        await first.step(None)
    await first.snapshot()  # covers 500 commands
    for _ in range(10):
        await first.step(None)  # 500 more, applied but not in the snapshot
    # A batch delivered but never committed: the process "dies" holding it.
    await rds.xreadgroup(keys.GROUP, "shard-0", {keys.input_key(redis_prefix, 0): ">"}, count=50)
    del first

    second = Shard(cfg, redis=rds)
    await second.start()
    assert second.replayed == 500
    assert second.replay_verified > 500
    assert second.replay_mismatches == 0
    assert second.commands == 50  # the pending batch, re-processed during recovery
    await drain(second)
    assert second.commands == len(commands) - 1000
    assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)
    await second.shutdown()


async def test_recovery_without_snapshot_replays_from_start(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(
        # The lease outlasts the replay of 866 commands on a loaded machine (1 s did not, in
        # a full CI run: the second shard's first refresh found it expired).
        shard=0,
        shards=1,
        prefix=redis_prefix,
        batch_size=64,
        lease_ms=3000,
        block_ms=50,
    )
    await client.submit_many(rds, redis_prefix, 1, flow(800, seed=3))
    first = Shard(cfg, redis=rds)
    await first.start()
    await drain(first)
    state = first.engine
    del first
    more = flow(1300, seed=3)[800 + 3 * 22 :]  # the same flow carries on
    await client.submit_many(rds, redis_prefix, 1, more)
    assert await rds.get(keys.snapshot_key(redis_prefix, 0)) is None
    second = Shard(cfg, redis=rds)
    await second.start()
    assert second.replayed == 800 + 3 * 22
    assert second.replay_mismatches == 0
    from matching.core import dump_engine

    assert dump_engine(second.engine) == dump_engine(state)
    await drain(second)
    assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)
    await second.shutdown()


async def test_duplicate_commands_are_harmless(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(shard=0, shards=1, prefix=redis_prefix)
    shard = Shard(cfg, redis=rds)
    await shard.start()
    add = {
        "cmd": "ADD_ASSET",
        "asset_id": "AAA",
        "price_scale": 2,
        "tick_size": 1,
        "qty_scale": 0,
        "lot_size": 1,
        "collar_bps": 500,
        "stp": "CANCEL_NEWEST",
        "ts": 1,
    }
    order = new_order("o-1", "u", "AAA", "BUY", "LIMIT", "GTC", quantity=5, price=100, ts=2)
    cancel = {"cmd": "CANCEL", "order_id": "o-1", "asset_id": "AAA", "ts": 3}
    for cmd in (add, order, order, cancel, order, cancel):
        await client.submit(rds, redis_prefix, 1, cmd)
    await drain(shard)
    events = [json.loads(s) for s in await stored_events(rds, redis_prefix)]
    assert [(e["event"], e.get("order_id")) for e in events] == [
        ("ASSET_CONFIGURED", None),
        ("ACCEPTED", "o-1"),
        ("CANCELLED", "o-1"),
        ("CANCEL_REJECTED", "o-1"),
    ]
    await shard.shutdown()


async def test_commands_for_another_shard_are_rejected(rds: Redis, redis_prefix: str) -> None:
    assets = {keys.shard_for(a, 2): a for a in ("AAA", "BBB", "CCC", "DDD")}
    mine, other = assets[0], assets[1]
    cfg = ShardConfig(shard=0, shards=2, prefix=redis_prefix)
    shard = Shard(cfg, redis=rds)
    await shard.start()
    stray = new_order("o-2", "u", other, "BUY", "LIMIT", "GTC", quantity=5, price=100, ts=2)
    await rds.xadd(keys.input_key(redis_prefix, 0), {COMMAND_FIELD: encode_command(stray)})
    await rds.xadd(keys.input_key(redis_prefix, 0), {COMMAND_FIELD: "{oops"})
    await client.submit(rds, redis_prefix, 2, {"cmd": "EXPIRE_DAY", "asset_id": mine, "ts": 3})
    await drain(shard)
    events = [json.loads(s) for s in await stored_events(rds, redis_prefix)]
    assert [(e["event"], e["reason"]) for e in events] == [
        ("REJECTED", "WRONG_SHARD"),
        ("REJECTED", "MALFORMED"),
        ("REJECTED", "UNKNOWN_ASSET"),
    ]
    await shard.shutdown()


async def test_run_stops_on_request(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(shard=0, shards=1, prefix=redis_prefix, block_ms=50)
    shard = Shard(cfg, redis=rds)
    task = asyncio.create_task(shard.run())
    await client.submit_many(rds, redis_prefix, 1, flow(300, seed=5))
    await eventually(
        lambda: current(shard.commands), lambda n: n >= 300 + 3 * 22, timeout=5, what="all applied"
    )
    shard.stop()
    await asyncio.wait_for(task, 5)
    snap = json.loads(await rds.get(keys.snapshot_key(redis_prefix, 0)))
    assert snap["input_id"] == shard.applied
    assert await rds.exists(keys.heartbeat_key(redis_prefix, 0)) == 0


async def test_run_recovers_in_process_from_dropped_connections(
    rds: Redis, redis_url: str, redis_prefix: str
) -> None:
    """Redis drops the shard's connections mid-stream (a transaction may be in flight): the
    shard rebuilds its engine from Redis and carries on; nothing lost, nothing doubled."""
    cfg = ShardConfig(
        shard=0, shards=1, redis_url=redis_url, prefix=redis_prefix, batch_size=50, block_ms=20
    )
    shard = Shard(cfg)  # its own client, named after the prefix
    task = asyncio.create_task(shard.run())
    commands = flow(6000, seed=9)
    ids: list[str] = []
    kills = 0
    for start in range(0, len(commands), 500):
        ids += await client.submit_many(rds, redis_prefix, 1, commands[start : start + 500])
        await asyncio.sleep(0.02)
        if start in (1500, 4000):
            for c in await rds.client_list():
                if c.get("name") == f"{redis_prefix}matching-shard-0":
                    await rds.client_kill_filter(_id=c["id"])
                    kills += 1
    await eventually(
        lambda: current(shard.applied),
        lambda a: a == ids[-1],
        timeout=10,
        what="the last id applied",
    )
    shard.stop()
    await asyncio.wait_for(task, 10)
    assert kills >= 2
    assert shard.recoveries >= 2  # the start, then after the dropped connections
    assert shard.replay_mismatches == 0
    assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)


async def test_lease_keeps_one_process_per_shard(rds: Redis, redis_prefix: str) -> None:
    cfg = ShardConfig(shard=0, shards=1, prefix=redis_prefix, lease_ms=400, block_ms=50)
    first = Shard(cfg, redis=rds)
    await first.start()
    second = Shard(cfg, redis=rds)
    taking_over = asyncio.create_task(second.start())
    await asyncio.sleep(0.2)
    assert not taking_over.done()  # waits while the first holds the lease
    await asyncio.wait_for(taking_over, 3)  # the first stalled past its lease: taken over
    commands = flow(200, seed=4)
    await client.submit_many(rds, redis_prefix, 1, commands)
    with pytest.raises(LeaseLostError):
        await first.step(None)  # fenced: it can neither take deliveries nor commit
    assert await drain(second) == len(commands)
    assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)
    await second.shutdown()
    await first.shutdown()  # releases nothing it does not hold
    assert await rds.exists(keys.lease_key(redis_prefix, 0)) == 0


async def test_poison_input_never_stops_the_shard(rds: Redis, redis_prefix: str) -> None:
    """Whatever lands in the input stream becomes events (REJECTED at worst); the shard goes on."""
    cfg = ShardConfig(shard=0, shards=1, prefix=redis_prefix)
    shard = Shard(cfg, redis=rds)
    await shard.start()
    weird = '\ud800x"\\\n\u2603'
    add = {
        "cmd": "ADD_ASSET",
        "asset_id": "OK",
        "price_scale": 2,
        "tick_size": 1,
        "qty_scale": 0,
        "ts": 1,
    }
    order = {
        "cmd": "NEW_ORDER",
        "order_id": "o",
        "user_id": weird,
        "asset_id": "OK",
        "side": "BUY",
        "order_type": "LIMIT",
        "tif": "GTC",
        "quantity": 1,
        "price": 1,
        "ts": 1,
    }
    payloads = [
        "not json",
        "[]",
        "{}",
        json.dumps({**add, "asset_id": weird}),  # REJECTED: not a usable key part
        json.dumps(add),
        json.dumps({**order, "order_id": "w", "asset_id": weird}),
        json.dumps(order),
        json.dumps({**order, "order_id": "p", "side": "SELL", "user_id": weird[::-1]}),
        json.dumps({**order, "order_id": "q", "quantity": 10**40, "price": 10**30}),
        json.dumps({**order, "order_id": "r", "quantity": 1.0}),
        json.dumps({**order, "order_id": ["x"]}),
        json.dumps({**order, "order_id": "s", "side": {"a": 1}, "stp": [1]}),
        json.dumps({"cmd": "CANCEL", "order_id": "q", "asset_id": "OK", "ts": "soon"}),
        json.dumps({"cmd": "CANCEL", "order_id": "q", "asset_id": "OK", "ts": 5}),
        json.dumps({"cmd": "REFERENCE_PRICE", "asset_id": "OK", "price": -5, "ts": 2}),
        json.dumps({"cmd": "EXPIRE_DAY", "asset_id": 7, "ts": 3}),
        json.dumps({"cmd": None}),
    ]
    pipe = rds.pipeline(transaction=False)
    for s in payloads:
        pipe.xadd(keys.input_key(redis_prefix, 0), {COMMAND_FIELD: s})
    pipe.xadd(keys.input_key(redis_prefix, 0), {"other": "field"})
    await pipe.execute()
    assert await drain(shard) == len(payloads) + 1
    events = [json.loads(s) for s in await stored_events(rds, redis_prefix)]
    assert events[3]["reason"] == "INVALID_CONFIG"
    assert [e["event"] for e in events if e["order_id"] == "p"] == ["ACCEPTED", "FILL"]
    assert [e["event"] for e in events if e["order_id"] == "q"] == [
        "ACCEPTED",
        "CANCEL_REJECTED",  # the malformed cancel ("ts": "soon") leaves the order alone
        "CANCELLED",
    ]
    assert await stored_events(rds, redis_prefix) == await expected_events(rds, cfg)
    await shard.shutdown()
