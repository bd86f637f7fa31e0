"""The whole platform spread as a fleet would run it, on this machine (issue 21's multi-node
test): a Redis Cluster of 3 masters and 3 replicas, a PostgreSQL primary and its streaming
replica (the lag-tolerant reads on it), 2 API nodes behind HAProxy, 2 matching shards and their
settlement consumers, each a process of its own. A burst of orders on both shards and resuming
`orderUpdates` subscribers go through HAProxy while one API node and the Redis master owning one
shard's slot are SIGKILLed. Afterwards: every accepted order final or resting (the resting ones
are cancelled through the API), no fill applied twice, the ledger check clean, every subscriber
that reconnected got the events it missed, by cursor, once each and in order, the replica still
serving reads, and `/readyz` 200 through HAProxy with both nodes back in its pool.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import text

from bourse.keys import input_key, shard_for
from bourse.migrate import upgrade_async
from bourse.settings import Settings
from models.services import Services, open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import cancel_open_orders, grant_shares, list_asset, trader, wait_book
from tests.scale.subscribers import ResumingSubscriber
from tests.scale.test_api_nodes import haproxy_servers
from tests.support.faults import Burst, assert_consistent, quiescent, run_burst, wait_ready
from tests.support.pg_replica import ReplicatedPostgres
from tests.support.polling import eventually
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

TRADERS = 3  # per asset
BURST_SECONDS = 10.0


@dataclass
class Fleet:
    stack: Stack
    services: Services
    cluster: RedisClusterProcesses
    pg: ReplicatedPostgres
    symbols: dict[int, str]  # shard -> an asset it owns


@pytest.fixture
async def fleet(settings: Settings) -> AsyncIterator[Fleet]:
    with tempfile.TemporaryDirectory(prefix="bourse-fleet-") as directory:
        root = Path(directory)
        cluster = RedisClusterProcesses(root / "redis")
        try:
            await cluster.start()
            async with ReplicatedPostgres() as pg:
                await upgrade_async(pg.url)
                assert pg.replica is not None
                await pg.replica.wait_streaming()
                own = settings.model_copy(
                    update={
                        "database_url": pg.url,
                        "database_replica_url": pg.replica.url,
                        "redis_url": cluster.url,
                        "jobs_redis_url": settings.redis_url,  # arq cannot use a cluster
                    }
                )
                stack = Stack(own, shards=2, api_nodes=2, work_dir=root)
                stack.env["BOURSE_RECONCILE_INTERVAL_SECONDS"] = "1.0"
                stack.env["BOURSE_REPLICA_CHECK_SECONDS"] = "0.5"
                try:
                    await stack.start_all()
                    async with open_services(
                        stack.settings, pg.url, cluster.url, pool_size=4
                    ) as services:
                        symbols: dict[int, str] = {}
                        while len(symbols) < 2:
                            sym = symbol("MN")
                            symbols.setdefault(shard_for(sym, 2), sym)
                        for sym in symbols.values():
                            await list_asset(services, sym, "100.00", liquidity=True)
                        for sym in symbols.values():
                            await wait_book(services, sym, timeout=30)
                        yield Fleet(stack, services, cluster, pg, symbols)
                finally:
                    await stack.stop_all()
        finally:
            await cluster.stop()


async def test_a_fleet_loses_an_api_node_and_a_redis_master_mid_burst(fleet: Fleet) -> None:
    stack, services = fleet.stack, fleet.services
    assert stack.admin_socket is not None
    redis = services.redis
    assert isinstance(redis, RedisCluster)
    victim_slot = int(redis.keyslot(input_key(stack.prefix, 0)))
    owners = {
        k: await fleet.cluster.master_of_slot(int(redis.keyslot(input_key(stack.prefix, k))))
        for k in fleet.symbols
    }
    assert owners[0] != owners[1], f"both shards on one master: {owners}"
    victim = (await fleet.cluster.masters()).index(owners[0])

    async with stack.client() as api:
        traders: dict[int, tuple[list[str], list[uuid.UUID]]] = {}
        for k, sym in fleet.symbols.items():
            tokens, ids = [], []
            for _ in range(TRADERS):
                token, user_id = await trader(api, "100000")
                await grant_shares(services, user_id, sym, "1000")
                tokens.append(token)
                ids.append(user_id)
            traders[k] = (tokens, ids)
        subscribers = [
            ResumingSubscriber(api, token, user_id)
            for tokens, ids in traders.values()
            for token, user_id in zip(tokens, ids, strict=True)
        ]
        for sub in subscribers:
            await sub.start()

        bursts = {k: Burst() for k in fleet.symbols}
        running = [
            await run_burst(api, traders[k][0], sym, bursts[k]) for k, sym in fleet.symbols.items()
        ]
        await asyncio.sleep(BURST_SECONDS / 3)
        await stack.kill("api-1")
        await fleet.cluster.kill_master(victim)  # returns once its replica has taken over
        assert await fleet.cluster.master_of_slot(victim_slot) != owners[0]
        await asyncio.sleep(BURST_SECONDS / 3)
        for stop, _ in running:
            stop.set()
        for _, tasks in running:
            await asyncio.gather(*tasks)
        counts = {k: (len(b.accepted), b.unavailable, b.failed) for k, b in bursts.items()}
        print(f"(accepted, unavailable, failed) per shard: {counts}")
        for k, b in bursts.items():
            assert len(b.accepted) > 20, f"too few orders on shard {k}: {counts}"

        await stack.start("api-1")
        await eventually(
            lambda: asyncio.sleep(0, haproxy_servers(stack.admin_socket)),  # type: ignore[arg-type]
            lambda servers: servers == {"api-1": "UP", "api-2": "UP"},
            timeout=30,
            what="both API nodes in HAProxy's pool",
        )
        assert await wait_ready(api, timeout=60) >= 0  # /readyz 200 through HAProxy

        everyone = [u for _, ids in traders.values() for u in ids]
        await quiescent(services, everyone, timeout=90)
        for tokens, ids in traders.values():
            await cancel_open_orders(api, services, dict(zip(ids, tokens, strict=True)))
        await quiescent(services, everyone, timeout=90)
        for k, sym in fleet.symbols.items():
            fills = await assert_consistent(services, traders[k][1], bursts[k].accepted, sym)
            assert fills, f"no fill on {sym}"

        reconnected = [sub for sub in subscribers if sub.connects > 1]
        print(f"{len(reconnected)} of {len(subscribers)} subscribers reconnected")
        assert reconnected, "no subscriber lost its node: the test proved nothing"
        for sub in subscribers:
            await sub.assert_got_everything(services)
        for sub in subscribers:
            await sub.stop()

    # The replica replayed all of it and still serves the lag-tolerant reads.
    assert fleet.pg.replica is not None
    await fleet.pg.replica.wait_streaming()
    async with services.reads() as s:
        assert await s.scalar(text("SELECT pg_is_in_recovery()")) is True
