"""Redis key names and the asset → shard mapping.

Every key of shard ``K`` carries the hash tag ``{K}`` so a Redis Cluster keeps them in one slot
(the shard's MULTI/EXEC spans several of them). ``P`` is the deployment's key prefix (e.g.
``"bourse:"``, or ``""``).
"""

from __future__ import annotations

import zlib
from typing import Final

GROUP: Final = "matching"  # consumer group of every input stream


def shard_for(asset_id: str, shards: int) -> int:
    """The shard that owns ``asset_id``: CRC-32 of its UTF-8 bytes modulo ``shards``. Stable
    across processes, machines and Python versions (unlike ``hash()``)."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return zlib.crc32(asset_id.encode("utf-8", "surrogatepass")) % shards


def _base(prefix: str, shard: int) -> str:
    return f"{prefix}matching:{{{shard}}}"


def input_key(prefix: str, shard: int) -> str:
    """Stream of commands (field ``command``)."""
    return f"{_base(prefix, shard)}:in"


def events_key(prefix: str, shard: int) -> str:
    """Stream of events (field ``event``)."""
    return f"{_base(prefix, shard)}:events"


def snapshot_key(prefix: str, shard: int) -> str:
    """String: the latest snapshot (JSON)."""
    return f"{_base(prefix, shard)}:snapshot"


def applied_key(prefix: str, shard: int) -> str:
    """String: id of the last input entry whose events were appended."""
    return f"{_base(prefix, shard)}:applied"


def heartbeat_key(prefix: str, shard: int) -> str:
    """String with a short TTL, refreshed while the shard runs."""
    return f"{_base(prefix, shard)}:heartbeat"


def lease_key(prefix: str, shard: int) -> str:
    """String: the token of the one process allowed to run the shard (short TTL)."""
    return f"{_base(prefix, shard)}:lease"


def book_key(prefix: str, shard: int, asset_id: str) -> str:
    """String: top of book and depth of one asset (JSON)."""
    return f"{_base(prefix, shard)}:book:{asset_id}"


def depth_channel(prefix: str, asset_id: str) -> str:
    """Pub/sub channel carrying the same JSON as ``book_key`` on every change."""
    return f"{prefix}matching:depth:{asset_id}"


def all_keys(prefix: str, shard: int) -> str:
    """A SCAN pattern matching every key of one shard (for clean-up in tests and tools)."""
    return f"{prefix}matching:{{{shard}}}:*"
