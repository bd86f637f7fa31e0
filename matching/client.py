"""What the rest of the platform calls: submit commands, read books, check shard liveness."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bourse.keys import book_key, heartbeat_key, input_key, shard_for

from .wire import COMMAND_FIELD, TRACE_FIELD, encode_command


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def submit(redis: Redis, prefix: str, shards: int, command: Mapping[str, Any]) -> str:
    """XADD ``command`` to its asset's shard input stream; returns the entry id.

    Idempotent for NEW_ORDER: the shard ignores a repeated ``order_id``, so an outbox relay may
    resend after a crash. Raises ``ValueError`` for a malformed command."""
    payload = encode_command(command)
    key = input_key(prefix, shard_for(command["asset_id"], shards))
    return _str(await redis.xadd(key, {COMMAND_FIELD: payload}))


async def submit_many(
    redis: Redis, prefix: str, shards: int, commands: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Submit several commands in one round trip, in order (per shard, order is kept)."""
    encoded = [(command["asset_id"], encode_command(command), None) for command in commands]
    return await submit_encoded(redis, prefix, shards, encoded)


async def submit_encoded(
    redis: Redis, prefix: str, shards: int, commands: Iterable[tuple[str, str, str | None]]
) -> list[str]:
    """Submit ``(asset_id, canonical JSON, traceparent)`` (``wire.encode_command``'s text, e.g.
    as an outbox stored it) unchanged, in one round trip, in order. A traceparent (W3C, or
    None) rides in the entry's ``trace`` field, beside the command, never inside it."""
    pipe = redis.pipeline(transaction=False)
    n = 0
    for asset_id, payload, trace in commands:
        fields = {COMMAND_FIELD: payload, TRACE_FIELD: trace} if trace else {COMMAND_FIELD: payload}
        pipe.xadd(input_key(prefix, shard_for(asset_id, shards)), fields)  # type: ignore[arg-type]
        n += 1
    if not n:
        return []
    return [_str(x) for x in await pipe.execute()]


async def group_lag(redis: Redis, stream: str, group: str) -> int | None:
    """Entries of ``stream`` not yet delivered to consumer ``group`` (Redis 7's XINFO GROUPS
    ``lag``); None when the stream or the group does not exist, or Redis cannot tell."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return None
    for info in groups:
        if _str(info.get("name", b"")) == group:
            lag = info.get("lag")
            return int(lag) if lag is not None else None
    return None


async def read_book(redis: Redis, prefix: str, shards: int, asset_id: str) -> dict[str, Any] | None:
    """The asset's latest published top of book and depth, or None if never published."""
    raw = await redis.get(book_key(prefix, shard_for(asset_id, shards), asset_id))
    if raw is None:
        return None
    obj = json.loads(raw)
    return obj if isinstance(obj, dict) else None


async def read_books(
    redis: Redis, prefix: str, shards: int, asset_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Several assets' books in one round trip (a pipeline: their keys may live on different
    shards, i.e. different Redis Cluster slots, where one MGET could not read them)."""
    wanted = list(asset_ids)
    if not wanted:
        return {}
    pipe = redis.pipeline(transaction=False)
    for asset_id in wanted:
        pipe.get(book_key(prefix, shard_for(asset_id, shards), asset_id))
    books: dict[str, dict[str, Any]] = {}
    for asset_id, raw in zip(wanted, await pipe.execute(), strict=True):
        obj = json.loads(raw) if raw is not None else None
        if isinstance(obj, dict):
            books[asset_id] = obj
    return books


async def shards_alive(redis: Redis, prefix: str, shards: int) -> dict[int, bool]:
    """Which shards have a fresh heartbeat (for /readyz: every value must be True)."""
    pipe = redis.pipeline(transaction=False)
    for k in range(shards):
        pipe.exists(heartbeat_key(prefix, k))
    return {k: bool(v) for k, v in enumerate(await pipe.execute())}
