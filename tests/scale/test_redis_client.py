"""The Redis client factory (``bourse/redis_client.py``) and the key/slot rules of a cluster.

Pure checks first (URL parsing, the jobs URL rule, which client each URL gives, every key a
multi-key command or script uses together sharing one slot), then the cluster-only helpers
against a real 3 + 3 Redis Cluster (``tests/support/redis_cluster.py``): the login throttle's
and the rate limiter's scripts, quotes across slots, XREADGROUP over two shards' streams, the
SCAN clean-up visiting every master, and a PUBLISH from a cluster pipeline reaching the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from bourse import keys, redis_client
from bourse.redis_client import JobsRedisRequired, jobs_url, parse_cluster_url
from bourse.settings import Settings
from models.quotes import QuoteData, read_quotes, write_quotes
from models.services import Services, open_services
from resolvers.hub import BoundedQueueSubscriber, Hub
from tests.support.redis_cluster import RedisClusterProcesses


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


# ---------------------------------------------------------------- URLs and the factory


def test_cluster_urls_parse() -> None:
    parsed = parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node3")
    assert parsed.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("node3", 6379)]
    assert (parsed.username, parsed.password, parsed.ssl) == (None, None, False)
    secure = parse_cluster_url("rediss+cluster://app:s%40cret@h1:7000,h2:7000/")
    assert secure.nodes == [("h1", 7000), ("h2", 7000)]
    assert (secure.username, secure.password, secure.ssl) == ("app", "s@cret", True)
    assert redis_client.is_cluster_url("redis+cluster://h:1")
    assert not redis_client.is_cluster_url("redis://h:6379/0")
    with pytest.raises(ValueError, match="no node"):
        parse_cluster_url("redis+cluster://")
    with pytest.raises(ValueError, match="not a redis"):
        parse_cluster_url("redis://h:6379/0")


def test_the_jobs_url_rule() -> None:
    plain, cluster = "redis://127.0.0.1:6379/0", "redis+cluster://127.0.0.1:7000"
    assert jobs_url(plain, None) == plain  # defaults to REDIS_URL when that is plain
    assert jobs_url(cluster, "redis://jobs:6379/1") == "redis://jobs:6379/1"
    with pytest.raises(JobsRedisRequired, match="BOURSE_JOBS_REDIS_URL"):
        jobs_url(cluster, None)  # required with a cluster
    with pytest.raises(JobsRedisRequired):
        jobs_url(plain, cluster)  # and never a cluster itself


async def test_each_url_gives_its_client() -> None:
    plain = redis_client.connect("redis://127.0.0.1:6379/0", max_connections=7, pool_timeout=2)
    try:
        assert type(plain) is Redis
        pool = plain.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.max_connections == 7
        assert not redis_client.is_cluster(plain)
    finally:
        await plain.aclose()
    cluster = redis_client.connect("redis+cluster://127.0.0.1:7000", socket_timeout=3)
    try:
        assert isinstance(cluster, RedisCluster)
        assert redis_client.is_cluster(cluster)
        assert cluster.connection_kwargs["socket_timeout"] == 3
    finally:
        await cluster.aclose()


def test_a_process_on_a_cluster_without_a_jobs_redis_refuses_to_start() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "REDIS_URL": "redis+cluster://127.0.0.1:7000",
    }
    env.pop("BOURSE_JOBS_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "workers.jobs"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert "BOURSE_JOBS_REDIS_URL" in done.stderr


# ---------------------------------------------------------------- key / slot rules


def test_every_key_of_a_shard_is_in_one_slot() -> None:
    """The shard's MULTI/EXEC (XADD events, XACK input, SET applied, SET books, WATCH lease,
    XREADGROUP input) and its recovery touch only these keys: one slot per shard."""
    for prefix in ("bourse:", "", "stk1a2b3c:"):
        slots = set()
        for k in range(64):
            shard_keys = [
                keys.input_key(prefix, k), keys.events_key(prefix, k),
                keys.snapshot_key(prefix, k), keys.applied_key(prefix, k),
                keys.epoch_key(prefix, k), keys.heartbeat_key(prefix, k),
                keys.lease_key(prefix, k), keys.book_key(prefix, k, "AAPL"),
                keys.book_key(prefix, k, "X{Y}Z"),
            ]  # fmt: skip
            assert {_slot(key) for key in shard_keys} == {_slot(f"{{{k}}}")}, k
            assert f"{{{k}}}" in keys.all_keys(prefix, k)
            slots.add(_slot(keys.input_key(prefix, k)))
        assert len(slots) == 64  # and shards spread over slots (so over masters)


def test_the_login_throttle_keys_of_one_ident_share_a_slot() -> None:
    """One Lua script reads and writes both (``models/throttle.py``)."""
    idents = ["a@example.com", "10.0.0.1", "x}y{z", "{", "}", "", "ü@ß.de"]
    for kind in ("acct", "ip"):
        for ident in idents:
            fail = keys.login_fail_key("bourse:", kind, ident)
            lock = keys.login_lock_key("bourse:", kind, ident)
            assert _slot(fail) == _slot(lock), (kind, ident)
    spread = {_slot(keys.login_fail_key("bourse:", "acct", f"u{i}@x")) for i in range(50)}
    assert len(spread) > 40  # not one hot slot for every account


# ---------------------------------------------------------------- on a real cluster


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[RedisClusterProcesses]:
    with tempfile.TemporaryDirectory(prefix="bourse-cluster-") as directory:
        servers = RedisClusterProcesses(Path(directory))
        try:
            await servers.start()
            yield servers
        finally:
            await servers.stop()


@pytest.fixture
async def on_cluster(settings: Settings, cluster: RedisClusterProcesses) -> AsyncIterator[Services]:
    own = settings.model_copy(
        update={
            "redis_url": cluster.url,
            "jobs_redis_url": settings.redis_url,
            "redis_prefix": f"rc{uuid.uuid4().hex[:8]}:",
            "login_max_failures": 3,
            "mutations_per_minute_per_user": 5,
            "mutations_per_minute_per_ip": 8,
        }
    )
    assert own.database_url
    async with open_services(own, own.database_url, cluster.url, pool_size=1) as services:
        try:
            yield services
        finally:
            await redis_client.delete_matching(services.redis, f"{own.redis_prefix}*")


async def test_the_login_throttle_locks_on_a_cluster(on_cluster: Services) -> None:
    throttle = on_cluster.accounts._throttle
    account = f"{uuid.uuid4().hex}@example.com"
    taken = [await throttle.reserve_account(account) for _ in range(5)]
    assert taken == [True, True, True, False, False]  # max 3, then locked
    lock = keys.login_lock_key(on_cluster.settings.redis_prefix, "acct", account)
    assert await on_cluster.redis.exists(lock) == 1
    await throttle.clear_account(account)  # one DEL of both keys: one slot
    assert await on_cluster.redis.exists(lock) == 0
    assert await throttle.reserve_account(account) is True


async def test_the_rate_limiter_counts_user_and_address_on_a_cluster(
    on_cluster: Services,
) -> None:
    user, ip = uuid.uuid4().hex, f"10.{uuid.uuid4().int % 250}.0.1"
    # The user's and the address's counters are in different slots (nearly always; the rate
    # key's window is part of the key, so compare slots the way the limiter names them): one
    # script call over both would be refused with CROSSSLOT.
    allowed = [await on_cluster.rate_limits.allow(user, ip) for _ in range(7)]
    assert allowed == [True] * 5 + [False] * 2  # the user's limit (5) binds first
    other = uuid.uuid4().hex  # another user, same address: 7 counted, limit 8
    assert await on_cluster.rate_limits.allow(other, ip) is True
    assert await on_cluster.rate_limits.allow(other, ip) is False


async def test_quotes_across_slots_and_their_subscribers(
    on_cluster: Services, cluster: RedisClusterProcesses
) -> None:
    prefix = on_cluster.settings.redis_prefix
    symbols = [f"Q{i}{uuid.uuid4().hex[:4].upper()}" for i in range(12)]
    assert len({_slot(keys.quote_key(prefix, s)) for s in symbols}) > 1
    hub = Hub(cluster.url)
    await hub.start()
    sub = BoundedQueueSubscriber()
    channels = [keys.quote_channel(prefix, s) for s in symbols]
    try:
        async with hub.subscription(channels, sub):
            now = datetime.now(UTC)
            quotes = [QuoteData(s, Decimal(10 + i), None, None, now) for i, s in enumerate(symbols)]
            await write_quotes(on_cluster.redis, prefix, quotes, publish=True)
            read = await read_quotes(on_cluster.redis, prefix, [*symbols, "NOPE"])
            assert {s: q.price for s, q in read.items()} == {
                s: Decimal(10 + i) for i, s in enumerate(symbols)
            }
            heard: set[str] = set()
            while len(heard) < len(symbols):
                delivery = await asyncio.wait_for(sub.get(), 10)
                heard |= {m.channel for m in delivery.messages}
            assert heard == set(channels)
    finally:
        await hub.close()


async def test_xreadgroup_over_two_shards_streams(on_cluster: Services) -> None:
    redis = on_cluster.redis
    prefix = on_cluster.settings.redis_prefix
    streams = [keys.events_key(prefix, k) for k in (0, 1)]
    assert _slot(streams[0]) != _slot(streams[1])
    for stream in streams:
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
        await redis.xadd(stream, {"event": stream})
    reply = await redis_client.xreadgroup(redis, "g", "c", dict.fromkeys(streams, ">"), count=10)
    got = {(k.decode() if isinstance(k, bytes) else k): len(v) for k, v in reply}
    assert got == dict.fromkeys(streams, 1)
    empty = await redis_client.xreadgroup(
        redis, "g", "c", dict.fromkeys(streams, ">"), count=10, block=50
    )
    assert all(not entries for _, entries in empty)


async def test_the_clean_up_scans_every_master(
    on_cluster: Services, cluster: RedisClusterProcesses
) -> None:
    redis = on_cluster.redis
    prefix = f"{on_cluster.settings.redis_prefix}scan:"
    names = [f"{prefix}{i}" for i in range(60)]
    await redis_client.mset(redis, dict.fromkeys(names, "x"))
    holders = set()
    for host, port in await cluster.masters():
        node = Redis(host=host, port=port)
        try:
            if [k async for k in node.scan_iter(match=f"{prefix}*")]:
                holders.add(port)
        finally:
            await node.aclose()
    assert len(holders) == 3  # the keys are spread over every master
    assert await redis_client.delete_matching(redis, f"{prefix}*") == len(names)
    assert await redis_client.mget(redis, names) == [None] * len(names)


async def test_the_hub_moves_to_another_node_when_its_node_dies(
    on_cluster: Services, cluster: RedisClusterProcesses
) -> None:
    """(Last in the module: it kills a node of the module's cluster.) The hub's node is
    SIGKILLed (a master: its replica is promoted first); the hub reconnects to another node,
    tells its subscriber to resync, and hears the next message."""
    prefix = on_cluster.settings.redis_prefix
    name = f"{prefix}hub-under-test"
    channel = keys.user_channel(prefix, uuid.uuid4().hex)
    hub = Hub(cluster.url, name=name)
    await hub.start()
    sub = BoundedQueueSubscriber()
    try:
        async with hub.subscription([channel], sub):
            await redis_client.publish(on_cluster.redis, channel, "before")
            first = await asyncio.wait_for(sub.get(), 10)
            assert [m.data for m in first.messages] == [b"before"]
            port = await _node_of(cluster, name)
            masters = [p for _, p in await cluster.masters()]
            if port in masters:
                await cluster.kill_master(masters.index(port))
            else:
                cluster.kill_node(port)
                await cluster.wait_ok()
            resynced = False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            heard: list[bytes] = []
            while b"after" not in heard:
                assert loop.time() < deadline, f"nothing heard after the node died: {heard}"
                with contextlib.suppress(Exception):  # a failover under way: try again
                    await redis_client.publish(on_cluster.redis, channel, "after")
                with contextlib.suppress(TimeoutError):
                    delivery = await asyncio.wait_for(sub.get(), 1)
                    resynced = resynced or delivery.resync
                    heard += [m.data for m in delivery.messages]
            assert resynced, "the subscriber was not told to resync after the reconnect"
            assert hub.stats.reconnects >= 1
            assert await _node_of(cluster, name) != port
    finally:
        await hub.close()


async def _node_of(cluster: RedisClusterProcesses, client_name: str) -> int:
    for port, proc in cluster.procs.items():
        if proc.poll() is not None:
            continue
        node = Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            if any(c.get("name") == client_name for c in await node.client_list()):
                return port
        finally:
            await node.aclose()
    raise AssertionError(f"no node has a client named {client_name}")


def test_a_cluster_failing_over_is_a_dependency_down_not_a_bug() -> None:
    """CLUSTERDOWN / TRYAGAIN (raised by the cluster client or read raw by the shard) are
    retried by the workers and answered SERVICE_UNAVAILABLE by the API; other errors are not.
    (A settlement process stopped on CLUSTERDOWN during the multi-node test's failover.)"""
    from redis.exceptions import ClusterDownError, ResponseError, TryAgainError

    from models.availability import is_unavailable

    assert is_unavailable(ClusterDownError("The cluster is down"))  # type: ignore[no-untyped-call]
    assert is_unavailable(TryAgainError("TRYAGAIN"))  # type: ignore[no-untyped-call]
    assert is_unavailable(ResponseError("CLUSTERDOWN The cluster is down"))
    assert is_unavailable(ResponseError("LOADING Redis is loading the dataset in memory"))
    assert not is_unavailable(ResponseError("WRONGTYPE Operation against a key"))
    assert not is_unavailable(ValueError("a bug"))
