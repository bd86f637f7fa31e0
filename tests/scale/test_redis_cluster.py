"""The whole platform on a Redis Cluster of 3 masters and 3 replicas (issue 21 item 1).

Every process of the stack (`tests/support/stack.py`: API, 2 shards, 2 settlement consumers,
the liquidity provider) runs with ``REDIS_URL=redis+cluster://…`` and arq's queue on a plain
Redis (``BOURSE_JOBS_REDIS_URL``). Two assets on the two shards, whose slots (``{0}``, ``{1}``)
are owned by different masters: orders match and settle, an ``orderUpdates`` subscriber and a
``quotes`` subscriber get their events, the ledger check is clean. Then the master owning one
shard's slot is SIGKILLed mid-burst: its replica is promoted, and the shard (re-resolving its
slot's master), settlement and the API carry on; every accepted order ends final or resting,
no fill is applied twice, the ledger check is clean, ``/readyz`` is 200.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from bourse.keys import input_key, shard_for
from bourse.settings import Settings
from models.orders import Fill
from models.quotes import QuoteData, write_quotes
from models.services import Services, open_services
from tests.market.test_quotes import next_quote, subscribe
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    FINAL,
    ORDER,
    PLACE,
    cancel_open_orders,
    grant_shares,
    list_asset,
    order_updates,
    trader,
    updates_until,
    wait_book,
)
from tests.support.faults import Burst, assert_consistent, quiescent, run_burst, wait_ready
from tests.support.polling import eventually
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.server import Api
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

TRADERS = 4


@dataclass
class ClusterPlatform:
    stack: Stack
    services: Services
    cluster: RedisClusterProcesses
    symbols: dict[int, str]  # shard -> an asset it owns
    bursts: dict[int, Burst] = field(default_factory=dict)  # the last burst per shard


@pytest.fixture(scope="module")
async def redis_cluster() -> AsyncIterator[RedisClusterProcesses]:
    with tempfile.TemporaryDirectory(prefix="bourse-cluster-") as directory:
        cluster = RedisClusterProcesses(Path(directory))
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.stop()


@pytest.fixture(scope="module")
async def platform(
    settings: Settings, redis_cluster: RedisClusterProcesses
) -> AsyncIterator[ClusterPlatform]:
    own = settings.model_copy(
        update={"redis_url": redis_cluster.url, "jobs_redis_url": settings.redis_url}
    )
    stack = Stack(own, shards=2, log_dir=_log_dir())
    stack.env["BOURSE_RECONCILE_INTERVAL_SECONDS"] = "1.0"
    try:
        await stack.start_all()
        s = stack.settings
        assert s.database_url
        async with open_services(s, s.database_url, redis_cluster.url, pool_size=4) as services:
            symbols: dict[int, str] = {}
            while len(symbols) < 2:
                sym = symbol("CL")
                symbols.setdefault(shard_for(sym, 2), sym)
            for sym in symbols.values():
                await list_asset(services, sym, "100.00", liquidity=True)
            for sym in symbols.values():
                await wait_book(services, sym, timeout=30)
            yield ClusterPlatform(stack, services, redis_cluster, symbols)
    finally:
        await stack.stop_all()


def _log_dir() -> Path | None:
    """BOURSE_TEST_LOG_DIR: every process of the stack logs there (at INFO), for a post-mortem."""
    where = os.environ.get("BOURSE_TEST_LOG_DIR")
    return Path(where) if where else None


def _slot(services: Services, key: str) -> int:
    redis = services.redis
    assert isinstance(redis, RedisCluster)
    return int(redis.keyslot(key))


async def _traders(
    p: ClusterPlatform, api: Api, sym: str, n: int = TRADERS
) -> tuple[list[str], list[uuid.UUID]]:
    """Traders of one asset only (the consistency check is per asset and its traders)."""
    tokens: list[str] = []
    user_ids: list[uuid.UUID] = []
    for _ in range(n):
        token, user_id = await trader(api, "100000")
        await grant_shares(p.services, user_id, sym, "1000")
        tokens.append(token)
        user_ids.append(user_id)
    return tokens, user_ids


async def _market_buy(api: Api, token: str, sym: str) -> dict[str, Any]:
    body = await api.gql(
        PLACE,
        {"input": {"assetId": sym, "orderType": "BUY", "orderSubType": "MARKET",
                   "quantity": "1"}},
        token,
    )  # fmt: skip
    payload = body["data"]["placeOrder"]
    assert payload["errors"] == [], payload
    order_id: str = payload["order"]["id"]

    async def final() -> dict[str, Any]:
        got = await api.gql(ORDER, {"id": order_id}, token)
        order: dict[str, Any] = got["data"]["order"]
        return order

    return await eventually(
        final, lambda o: o["status"] in FINAL, timeout=30, what=f"the market order on {sym} ended"
    )


async def test_orders_match_settle_and_notify_on_a_cluster(platform: ClusterPlatform) -> None:
    p = platform
    services = p.services
    prefix = p.stack.prefix
    # The two shards' keys are on different masters: the cluster really splits the work.
    owners = {
        k: await p.cluster.master_of_slot(_slot(services, input_key(prefix, k))) for k in (0, 1)
    }
    assert owners[0] != owners[1], owners

    async with p.stack.client() as api:
        token, user_id = await trader(api, "100000")
        orders: list[uuid.UUID] = []
        async with order_updates(api, token) as updates, api.ws() as quotes:
            await subscribe(quotes, list(p.symbols.values()))
            for sym in p.symbols.values():
                order = await _market_buy(api, token, sym)
                assert order["status"] == "EXECUTED", order
                orders.append(uuid.UUID(order["id"]))
                # The orderUpdates subscriber (user channel, classic pub/sub on the cluster)
                seen = await updates_until(updates, order["id"], {"FILL"}, timeout=20)
                assert any(u["order"]["id"] == order["id"] for u in seen)
            # The quotes subscriber: a quote published on the cluster reaches it.
            sym = p.symbols[1]
            quote = QuoteData(sym, Decimal("101.23"), None, None, datetime.now(UTC))
            await write_quotes(services.redis, prefix, [quote], publish=True)

            async def priced() -> dict[str, Any]:
                while True:
                    q = await next_quote(quotes, timeout=10)
                    if q["assetId"] == sym and Decimal(q["price"]) == Decimal("101.23"):
                        return q

            await asyncio.wait_for(priced(), 20)

        # Both shards settled: a fill on each asset, each applied once, the ledger balanced.
        await quiescent(services, [user_id])
        async with services.sessionmaker() as s:
            fills = (await s.scalars(select(Fill).where(Fill.taker_order_id.in_(orders)))).all()
            assert {f.asset_id for f in fills} == set(p.symbols.values())
            assert await services.ledger.check(s) == []
        assert (await wait_ready(api, 10)) >= 0


async def test_a_master_killed_mid_burst(platform: ClusterPlatform) -> None:
    p = platform
    services = p.services
    prefix = p.stack.prefix
    victim_shard = 0
    slot = _slot(services, input_key(prefix, victim_shard))
    owner = await p.cluster.master_of_slot(slot)
    index = (await p.cluster.masters()).index(owner)

    async with p.stack.client() as api:
        traders = {k: await _traders(p, api, sym) for k, sym in p.symbols.items()}
        # A subscriber open across the failover, whichever node the API's hub listens on.
        fresh, fresh_id = await trader(api, "100000")
        async with order_updates(api, fresh) as updates:
            await _burst_through_a_failover(p, api, traders, fresh, updates, slot, index, owner)
        tokens, ids = traders[victim_shard]
        traders[victim_shard] = ([*tokens, fresh], [*ids, fresh_id])
        everyone = [u for _, ids in traders.values() for u in ids]
        await quiescent(services, everyone, timeout=90)
        for tokens, ids in traders.values():
            await cancel_open_orders(api, services, dict(zip(ids, tokens, strict=True)))
        await quiescent(services, everyone, timeout=90)
        for k, sym in p.symbols.items():
            fills = await assert_consistent(services, traders[k][1], p.bursts[k].accepted, sym)
            assert len(p.bursts[k].accepted) > 10, f"too few orders on {sym}: {p.bursts[k]}"
            assert fills, f"no fill on {sym}"


async def _hub_nodes(p: ClusterPlatform) -> list[int]:
    """The ports of the nodes the API's pub/sub hub is connected to (CLIENT LIST by name)."""
    found: list[int] = []
    name = f"{p.stack.prefix}api-hub"
    for port, proc in p.cluster.procs.items():
        if proc.poll() is not None:
            continue
        node = Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            if any(c.get("name") == name for c in await node.client_list()):
                found.append(port)
        finally:
            await node.aclose()
    return found


async def _burst_through_a_failover(
    p: ClusterPlatform,
    api: Api,
    traders: dict[int, tuple[list[str], list[uuid.UUID]]],
    fresh: str,
    updates: ClientConnection,
    slot: int,
    index: int,
    owner: tuple[str, int],
) -> None:
    victim_shard = 0
    out: dict[int, Burst] = {k: Burst() for k in p.symbols}
    p.bursts = out
    runs = [run_burst(api, traders[k][0], sym, out[k]) for k, sym in p.symbols.items()]
    started = [await r for r in runs]
    await asyncio.sleep(3.0)
    hub_nodes = await _hub_nodes(p)
    killed = await p.cluster.kill_master(index)
    assert killed == owner
    promoted = await p.cluster.master_of_slot(slot)
    assert promoted != owner
    print(f"master {owner} of slot {slot} killed; {promoted} promoted; hub was on {hub_nodes}")
    await asyncio.sleep(5.0)
    for stop, _ in started:
        stop.set()
    for _, tasks in started:
        await asyncio.gather(*tasks)
    ready_after = await wait_ready(api, 60)
    counts = {k: (len(b.accepted), b.unavailable, b.failed) for k, b in out.items()}
    print(f"/readyz 200 {ready_after:.1f}s after; (accepted, unavailable, failed): {counts}")
    for burst in out.values():
        assert burst.failed == 0, f"requests failed without an answer: {counts}"

    # The shard on the promoted master trades again: a fresh trader's market order fills,
    # and the subscriber opened before the failover hears its fill.
    async def executes() -> dict[str, Any]:
        return await _market_buy(api, fresh, p.symbols[victim_shard])

    order = await eventually(
        executes,
        lambda o: o["status"] == "EXECUTED",
        timeout=60,
        what="a market order on the failed-over shard executed",
    )
    seen = await updates_until(updates, order["id"], {"FILL"}, timeout=30)
    assert seen[-1]["order"]["id"] == order["id"]
    print(f"hub now on {await _hub_nodes(p)}")
