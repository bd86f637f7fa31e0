"""Every process's Redis client(s), from ``REDIS_URL``: one factory, plain Redis or Redis Cluster.

- ``redis://host:port/db`` (or ``rediss://``, ``unix://``): one Redis, a plain ``redis.asyncio.
  Redis``, exactly as before (no extra round trip anywhere on this path).
- ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` for TLS; optional
  ``user:password@`` before the first node): a Redis Cluster, named by one or more seed nodes
  (any of them, masters or replicas; the rest are discovered). The client is redis-py's
  ``redis.asyncio.cluster.RedisCluster``, which routes each command to the master of its key's
  slot and follows MOVED / ASK and a failover (it re-reads the slot map).

redis-py 5.3's asyncio cluster client implements the commands the platform uses under the same
names, but not ``pubsub()``, ``publish()``, MULTI/EXEC pipelines or multi-slot MGET / MSET; the
helpers below (``publish``, ``pubsub``, ``mget``, ``mset``) are the one shape for those, and the
matching shard, whose raw MULTI/EXEC connection must be one node's, pins a plain client on the
master of its slot (``master_client``) and re-resolves it in its recovery path.

arq cannot use a cluster: its queue has its own URL, ``BOURSE_JOBS_REDIS_URL`` (``jobs_url``).

Clients are typed ``Redis`` for the rest of the code (a ``cast``): both classes answer the same
commands; the few places that need a connection pool or ``pubsub`` ask ``is_cluster`` first.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.exceptions import RedisClusterException, RedisError

from bourse.coalesce import Coalesced

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})


class JobsRedisRequired(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "REDIS_URL names a Redis Cluster, which arq's job queue cannot use: set "
            "BOURSE_JOBS_REDIS_URL to a plain Redis (redis://host:port/db) for the jobs"
        )


class ClusterUnavailable(RedisError):
    """No node of the cluster answered with a slot map covering the key (failover under way,
    or the cluster is down): retried like any other Redis error."""


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def is_cluster(redis: object) -> bool:
    """Whether a client (or pipeline) from ``connect`` talks to a cluster."""
    return isinstance(redis, RedisCluster | ClusterPipeline)


@dataclass(frozen=True)
class ClusterUrl:
    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    options: dict[str, str] = field(default_factory=dict)


def parse_cluster_url(url: str) -> ClusterUrl:
    """``redis+cluster://[user:password@]host:port[,host:port...][?options]``."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a redis+cluster:// URL: {url!r}")
    rest, _, query = rest.partition("?")
    rest = rest.rstrip("/")
    username = password = None
    if "@" in rest:
        creds, _, rest = rest.rpartition("@")
        user, sep, pw = creds.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    nodes: list[tuple[str, int]] = []
    for spec in rest.split(","):
        spec = spec.strip()
        if not spec:
            continue
        parts = urlsplit(f"//{spec}")
        if parts.hostname is None:
            raise ValueError(f"bad node {spec!r} in {url!r}")
        nodes.append((parts.hostname, parts.port or 6379))
    if not nodes:
        raise ValueError(f"no node in {url!r}")
    return ClusterUrl(
        nodes, username, password, scheme.lower().startswith("rediss"), dict(parse_qsl(query))
    )


def connect(
    url: str,
    *,
    decode_responses: bool = False,
    client_name: str | None = None,
    retry: Retry | None = None,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    health_check_interval: float = 0,
    max_connections: int | None = None,
    pool_timeout: float | None = None,
    lib_info: bool = True,
) -> Redis:
    """A client for ``url`` (plain or cluster), with the same options on both.

    ``pool_timeout`` (plain Redis only): a ``BlockingConnectionPool`` of ``max_connections``
    that waits this long for a free connection (it connects outside its lock). The cluster
    client has a pool per node, not blocking: past ``max_connections`` on one node a command
    fails with ``MaxConnectionsError`` (a ``ConnectionError``), which it retries."""
    common: dict[str, Any] = {
        "decode_responses": decode_responses,
        "client_name": client_name,
        "retry": retry,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "health_check_interval": health_check_interval,
    }
    if not lib_info:  # no CLIENT SETINFO round trips on connect
        common.update(lib_name=None, lib_version=None)
    if is_cluster_url(url):
        parsed = parse_cluster_url(url)
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in parsed.nodes],
            username=parsed.username,
            password=parsed.password,
            ssl=parsed.ssl,
            max_connections=max_connections or 2**31,
            **common,
        )
        # Same commands under the same names (see the module docstring).
        return cast(Redis, cluster)
    if pool_timeout is not None:
        return Redis.from_pool(
            BlockingConnectionPool.from_url(
                url, max_connections=max_connections or 50, timeout=pool_timeout, **common
            )
        )
    if max_connections is not None:
        common["max_connections"] = max_connections
    client: Redis = Redis.from_url(url, **common)
    return client


def _node_kwargs(redis: Redis) -> dict[str, Any]:
    """A cluster client's per-connection options (credentials, timeouts, decoding)."""
    kwargs = dict(cast(RedisCluster, redis).connection_kwargs)
    # Cluster-only entries (the cluster's parser and response callbacks); the connection
    # class stays (SSLConnection under rediss+cluster://).
    for drop in ("host", "port", "max_connections", "parser_class", "response_callbacks"):
        kwargs.pop(drop, None)
    return kwargs


def node_client(redis: Redis, host: str, port: int, **overrides: Any) -> Redis:
    """A plain client on one node of ``redis``'s cluster, with its options (and
    ``overrides``: connection options such as ``decode_responses``, ``client_name``)."""
    kwargs = {**_node_kwargs(redis), **overrides}
    return Redis(connection_pool=ConnectionPool(host=host, port=port, **kwargs))


async def master_of(redis: Redis, key: str) -> tuple[str, int]:
    """The address of the master that owns ``key``'s slot, from a fresh slot map (so a
    failover just past is seen). Raises ``ClusterUnavailable`` while no master serves it."""
    cluster = cast(RedisCluster, redis)
    try:
        await cluster.initialize()
        await cluster.nodes_manager.initialize()  # re-read CLUSTER SLOTS from a live node
        node = cluster.get_node_from_key(key)
    except (RedisClusterException, RedisError, OSError) as exc:
        raise ClusterUnavailable(f"no master for {key!r}: {exc!r}") from exc
    if node is None:
        raise ClusterUnavailable(f"no master for {key!r}")
    return node.host, int(node.port)


def pubsub(redis: Redis, **kwargs: Any) -> PubSub:
    """A classic pub/sub (SUBSCRIBE / PSUBSCRIBE) session. On a cluster a classic PUBLISH
    reaches every node, so one connection to any node hears every channel: a random one of
    the known nodes (another one when the caller reconnects after losing it)."""
    if not is_cluster(redis):
        return redis.pubsub(**kwargs)
    cluster = cast(RedisCluster, redis)
    # The known nodes (the slot map's, once the client has run a command; else the seeds).
    nodes = cluster.get_nodes() or list(cluster.nodes_manager.startup_nodes.values())
    node = random.choice(nodes)
    return node_client(redis, node.host, int(node.port)).pubsub(**kwargs)


def publish(target: Redis | Pipeline, channel: str, message: str | bytes) -> Any:
    """PUBLISH on a client or a pipeline, plain or cluster (redis-py's cluster client has no
    ``publish`` method; the command itself is broadcast by the cluster to every node)."""
    return target.execute_command("PUBLISH", channel, message)


async def mget(redis: Redis, keys: Sequence[str]) -> list[Any]:
    """MGET; on a cluster, one MGET per slot (keys of different slots cannot share one)."""
    if is_cluster(redis):
        return cast(list[Any], await cast(RedisCluster, redis).mget_nonatomic(list(keys)))
    return cast(list[Any], await redis.mget(list(keys)))


async def mset(redis: Redis, mapping: Mapping[str, str | bytes]) -> None:
    """MSET; on a cluster, one MSET per slot (not atomic across slots)."""
    if is_cluster(redis):
        await cast(RedisCluster, redis).mset_nonatomic(dict(mapping))
    else:
        await redis.mset(dict(mapping))


class Pipelined:
    """Commands of concurrent requests sent in one pipeline (not a transaction): the hot path's
    small reads and scripts (the rate limit, the reference price), which each cost a round
    trip's CPU (pool checkout, a write, a wakeup, a read: ~110 us measured, against ~20 us a
    command in a pipeline of eight). A call's commands stay together and in order; its replies
    come back as a direct call's would, and a command's error is raised to its caller only.
    On a cluster the pipeline is redis-py's ``ClusterPipeline``, which sends each command to
    its slot's node (a command must not span slots, as on any cluster call)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._batch: Coalesced[tuple[tuple[Any, ...], ...], list[Any]] = Coalesced(self._run)

    async def execute(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Each command's reply, in order (a command is ``execute_command``'s arguments)."""
        replies = await self._batch(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _run(self, calls: list[tuple[tuple[Any, ...], ...]]) -> list[list[Any]]:
        pipe = self._redis.pipeline(transaction=False)
        for commands in calls:
            for args in commands:
                pipe.execute_command(*args)
        replies = await pipe.execute(raise_on_error=False)
        out: list[list[Any]] = []
        start = 0
        for commands in calls:
            out.append(list(replies[start : start + len(commands)]))
            start += len(commands)
        return out


def jobs_url(redis_url: str, jobs_redis_url: str | None) -> str:
    """The Redis of arq's job queue: ``BOURSE_JOBS_REDIS_URL``, else ``REDIS_URL`` when that
    is a plain Redis; required (``JobsRedisRequired``) when ``REDIS_URL`` is a cluster."""
    if jobs_redis_url:
        if is_cluster_url(jobs_redis_url):
            raise JobsRedisRequired
        return jobs_redis_url
    if is_cluster_url(redis_url):
        raise JobsRedisRequired
    return redis_url


async def xreadgroup(
    redis: Redis,
    group: str,
    consumer: str,
    streams: Mapping[str, str],
    *,
    count: int | None = None,
    block: int | None = None,
) -> list[Any]:
    """XREADGROUP over several streams: one command on plain Redis; on a cluster one per slot
    (streams of different shards live on different slots), concurrently, their replies
    concatenated (RESP2 shape: ``[[stream, entries], ...]``). On a cluster a BLOCK waits for
    every slot's reply, so it is capped at 100 ms there (the latency a waiting reader adds)."""
    wanted = dict(streams)
    if not is_cluster(redis) or len(wanted) < 2:
        return cast(
            list[Any],
            await redis.xreadgroup(group, consumer, wanted, count=count, block=block) or [],  # type: ignore[arg-type]
        )
    cluster = cast(RedisCluster, redis)
    by_slot: dict[int, dict[str, str]] = {}
    for key, cursor in wanted.items():
        by_slot.setdefault(cluster.keyslot(key), {})[key] = cursor
    capped = None if block is None else min(block, 100)
    replies = await asyncio.gather(
        *(
            cluster.xreadgroup(group, consumer, part, count=count, block=capped)  # type: ignore[arg-type]
            for part in by_slot.values()
        )
    )
    out: list[Any] = []
    for reply in replies:
        if isinstance(reply, dict):  # RESP3
            out.extend([k, v] for k, v in reply.items())
        elif reply:
            out.extend(reply)
    return out


async def delete_matching(redis: Redis, pattern: str) -> int:
    """Delete every key matching ``pattern`` (tests' and tools' clean-up): SCAN on every master
    of a cluster (redis-py's cluster ``scan_iter`` visits each), DEL in chunks (split by slot
    on a cluster)."""
    found = [k async for k in redis.scan_iter(match=pattern, count=1000)]
    deleted = 0
    for i in range(0, len(found), 500):
        deleted += int(await redis.delete(*found[i : i + 500]))
    return deleted
