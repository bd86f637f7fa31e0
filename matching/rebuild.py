"""The shard's epochs: notice that its Redis state is gone, and rebuild it from the record.

``ensure_state`` runs under the lease before every recovery (start-up, and after any Redis
error). It reads the epoch key and compares it with the record (``matching.record.Record``):

- **missing** (no epoch, no snapshot, no applied id: Redis restarted empty, or a new Redis),
- **another epoch** (the record rebuilt the shard since this state was written),
- **behind** (the events stream ends before what the record has already settled: a Redis that
  lost its last writes, an AOF's last second, a failover to a lagging replica)

start a new epoch: ``_rebuild`` asks the record for the commands that rebuild the books (in one
PostgreSQL transaction it also fences settlement at the events stream's current end, so no
event of the old state is applied afterwards), applies them to an empty engine, and in ONE
MULTI/EXEC (guarded by the lease) appends their events, moves the consumer group to the input
stream's end (the commands before it are superseded by the record, which had them all: each was
committed in PostgreSQL before it was sent), sets the applied id there, writes a snapshot of
the rebuilt engine covering it, and sets the new epoch. A crash before the EXEC leaves the old
(or no) epoch, so the next start rebuilds again. Then recovery proceeds as usual from that
snapshot. A state from before epochs (a snapshot or applied id, no epoch) is adopted as it is.

A mixin of ``matching.shard.Shard``, like ``matching.recovery.Recovery``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bourse.keys import GROUP, book_key, depth_channel
from bourse.lease import Lease

from . import resp
from .core.engine import Engine
from .core.events import Event
from .core.snapshot import dump_engine
from .record import Record
from .resp import Transaction
from .shard_config import SNAPSHOT_FORMAT, ShardConfig, stream_id
from .wire import encode_events

log = logging.getLogger("matching.shard")


def new_epoch() -> str:
    return uuid.uuid4().hex


class Rebuild:
    """Epoch checks and the rebuild from the record (state: ``matching.shard.Shard``)."""

    redis: Redis
    config: ShardConfig
    lease: Lease
    engine: Engine
    record: Record | None
    in_key: str
    events_key: str
    snapshot_key: str
    applied_key: str
    epoch_key: str
    epoch: str | None
    rebuilds: int
    _xadd_prefix: bytes
    _published: dict[str, str]

    def _book_doc(self, asset: str, input_id: str, ts: int) -> str | None:
        raise NotImplementedError

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.in_key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _events_tail(self) -> str:
        """The last id the events stream ever generated ("0-0": no stream)."""
        try:
            info = await self.redis.xinfo_stream(self.events_key)
        except ResponseError:
            return "0-0"
        raw = info.get("last-generated-id") or "0-0"
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def ensure_state(self) -> None:
        """Rebuild from the record if the Redis state is missing, from another epoch or behind
        what was settled; adopt it otherwise; make sure the consumer group exists."""
        r = self.redis
        cfg = self.config
        current = await r.get(self.epoch_key)
        has_state = current is not None or bool(await r.exists(self.snapshot_key, self.applied_key))
        record = self.record
        if record is None:  # nothing to rebuild from: an empty engine, as on a first start
            if current is None:
                current = new_epoch()
                await r.set(self.epoch_key, current)
            self.epoch = current
            await self._ensure_group()
            return
        known = await record.state(cfg.shard)
        reason = None
        if not has_state:
            reason = "state missing"
        elif current is not None and known.epoch is not None and known.epoch != current:
            reason = f"epoch {current} is not the record's {known.epoch}"
        elif known.settled_id is not None:
            tail = await self._events_tail()
            if stream_id(tail) < stream_id(known.settled_id):
                reason = f"events end at {tail}, before the settled {known.settled_id}"
        if reason is not None:
            await self._rebuild(reason)
            return
        if current is None or known.epoch is None:
            current = current or new_epoch()
            await r.set(self.epoch_key, current)
            await record.adopt(cfg.shard, current)
            log.info("shard %s: adopted its Redis state as epoch %s", cfg.shard, current)
        self.epoch = current
        await self._ensure_group()

    async def _rebuild(self, reason: str) -> None:
        assert self.record is not None
        cfg = self.config
        r = self.redis
        epoch = new_epoch()
        log.warning("shard %s: rebuilding from the record (%s)", cfg.shard, reason)
        await self._ensure_group()
        last = await r.xrevrange(self.in_key, count=1)
        tail = last[0][0] if last else "0-0"
        tail = tail.decode() if isinstance(tail, bytes) else str(tail)
        fence = await self._events_tail()
        commands = await self.record.rebuild(cfg.shard, cfg.shards, epoch, fence)
        self.engine = Engine(cfg.dedup_window)
        self._published.clear()
        events: list[Event] = []
        for cmd in commands:
            events.extend(self._apply_command(cmd))
        tx = Transaction()
        encoded = encode_events(events, tail)
        tx.add_many(self._xadd_prefix, encoded)
        tx.add("XGROUP", "SETID", self.in_key, GROUP, tail)
        tx.add("SET", self.applied_key, tail)
        snapshot = {
            "format": SNAPSHOT_FORMAT,
            "shard": cfg.shard,
            "shards": cfg.shards,
            "input_id": tail,
            "events_id": fence,
            "engine": dump_engine(self.engine),
        }
        tx.add("SET", self.snapshot_key, json.dumps(snapshot, separators=(",", ":")))
        tx.add("SET", self.epoch_key, epoch)
        for asset in sorted(self.engine.books):
            doc = self._book_doc(asset, tail, 0)
            if doc is not None:
                tx.add("SET", book_key(cfg.prefix, cfg.shard, asset), doc)
                tx.add("PUBLISH", depth_channel(cfg.prefix, asset), doc)
        if cfg.trim_input and tail != "0-0":
            tx.add("XTRIM", self.in_key, "MINID", tail)
        await resp.execute(r, tx, (self.lease.key, self.lease.token))
        self.epoch = epoch
        self.rebuilds += 1
        orders = sum(1 for c in commands if c.get("cmd") == "NEW_ORDER")
        log.warning(
            "shard %s: rebuilt as epoch %s: %s assets, %s orders, %s events, input from %s",
            cfg.shard,
            epoch,
            len(self.engine.books),
            orders,
            len(encoded),
            tail,
        )

    def _apply_command(self, cmd: Mapping[str, Any]) -> list[Event]:
        return self.engine.apply(dict(cmd))
