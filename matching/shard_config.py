"""The shard runner's configuration (and its command line), its errors, stream-id arithmetic."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from .core.engine import DEFAULT_DEDUP_WINDOW
from .resp import Transaction

SNAPSHOT_FORMAT = 1
Entry = tuple[str, dict[str, str] | None]  # an input stream entry: (id, fields or None)


def stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class ShardConfig:
    shard: int
    shards: int
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = ""
    batch_size: int = 1000  # XREADGROUP COUNT
    block_ms: int = 200  # how long an idle shard waits for input per read (XREAD BLOCK)
    snapshot_every: int = 100_000  # commands between snapshots (0: never by count)
    snapshot_interval: float = 60.0  # seconds between snapshots if anything changed (0: never)
    depth_levels: int = 10
    heartbeat_interval: float = 0.0  # seconds; 0: a third of the lease
    heartbeat_ttl_ms: int = 5_000
    lease_ms: int = 3_000  # a restarted shard waits up to this long after a crash
    dedup_window: int = DEFAULT_DEDUP_WINDOW
    verify_replay: bool = True
    trim_input: bool = False  # XTRIM the input stream up to each snapshot
    reconcile_interval: float = 10.0  # seconds between reconciler rounds (0: never)

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} is not in 0..{self.shards - 1}")
        if not self.heartbeat_interval:
            object.__setattr__(self, "heartbeat_interval", self.lease_ms / 3000)
        if self.heartbeat_interval * 1000 * 2 > self.lease_ms:
            raise ValueError("the lease must outlast two heartbeat intervals")
        if self.block_ms >= self.lease_ms / 2:
            raise ValueError("block_ms must stay well under the lease")


class ReplayMismatchError(RuntimeError):
    """Replayed events differ from the stored ones: the engine is not deterministic."""


class StuckEntriesError(RedisError):
    """Input after the applied id was delivered to the group but never applied (a process
    that read without the lease?): the shard recovers, which applies them in order."""


class StateLostError(RedisError):
    """The shard's Redis state vanished under it (NOGROUP: Redis restarted empty): the shard
    recovers, which finds the epoch missing and rebuilds from the record."""


class CommitError(RuntimeError):
    """Redis refused the batch transaction: the engine is ahead of Redis, so the process must
    stop and recover from the snapshot and the stream."""


def parse_config(
    argv: Sequence[str] | None, *, description: str | None = None
) -> tuple[ShardConfig, str]:
    """``python -m matching.shard``'s arguments: the config and the log level."""
    ap = argparse.ArgumentParser(prog="python -m matching.shard", description=description)
    ap.add_argument("--shard", type=int, required=True)
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ShardConfig.redis_url))
    ap.add_argument("--prefix", default="")
    ap.add_argument("--batch-size", type=int, default=ShardConfig.batch_size)
    ap.add_argument("--block-ms", type=int, default=ShardConfig.block_ms)
    ap.add_argument("--snapshot-every", type=int, default=ShardConfig.snapshot_every)
    ap.add_argument("--snapshot-interval", type=float, default=ShardConfig.snapshot_interval)
    ap.add_argument("--reconcile-interval", type=float, default=ShardConfig.reconcile_interval)
    ap.add_argument("--depth-levels", type=int, default=ShardConfig.depth_levels)
    ap.add_argument("--dedup-window", type=int, default=ShardConfig.dedup_window)
    ap.add_argument("--lease-ms", type=int, default=ShardConfig.lease_ms)
    ap.add_argument("--no-verify-replay", action="store_true")
    ap.add_argument("--trim-input", action="store_true")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    config = ShardConfig(
        shard=args.shard,
        shards=args.shards,
        redis_url=args.redis_url,
        prefix=args.prefix,
        batch_size=args.batch_size,
        block_ms=args.block_ms,
        snapshot_every=args.snapshot_every,
        snapshot_interval=args.snapshot_interval,
        depth_levels=args.depth_levels,
        dedup_window=args.dedup_window,
        lease_ms=args.lease_ms,
        verify_replay=not args.no_verify_replay,
        trim_input=args.trim_input,
        reconcile_interval=args.reconcile_interval,
    )
    return config, str(args.log_level)


class Batch:
    """A batch applied to the engine, with the transaction that commits it."""

    __slots__ = ("commands", "events", "last", "tx")

    def __init__(self, tx: Transaction, last: str, commands: int, events: int) -> None:
        self.tx = tx
        self.last = last
        self.commands = commands
        self.events = events
