"""The shard runner: feeds one shard's engine from its Redis input stream.

    python -m matching.shard --shard K --shards N --redis-url URL --prefix P

One process per shard, enforced by a lease key. The loop (``Shard.run``): fetch a batch of
input through the consumer group (XREADGROUP COUNT) → apply each command to the engine → in ONE
MULTI/EXEC: XADD every event to the events stream, XACK the batch, SET the applied id, SET and
PUBLISH the changed books, and XREADGROUP the next input. Either all of that happens or none of
it, so an input entry's events are in the events stream exactly when the entry is acknowledged.
Each transaction is guarded by WATCH on the lease (a process that lost the shard can neither
commit nor take deliveries), and transactions are pipelined: Redis executes one while Python
applies the next batch.

Recovery (start-up, or after a Redis error) rebuilds the engine from the snapshot and the input
stream: ``matching/recovery.py``. The lease is ``bourse.lease``; the configuration and errors
are in ``matching/shard_config.py`` (re-exported here). See matching/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from bourse import metrics, redis_client, tracing
from bourse.keys import (
    GROUP,
    applied_key,
    book_key,
    depth_channel,
    epoch_key,
    events_key,
    heartbeat_key,
    input_key,
    lease_key,
    shard_for,
    snapshot_key,
)
from bourse.lease import Lease
from bourse.lease import LeaseLostError as LeaseLostError  # re-exported: the shard raises it

from . import resp
from .codec import format_fixed
from .core import CORE_KIND
from .core.constants import REJECTED, RESYNC, WRONG_SHARD
from .core.engine import Engine
from .core.events import Event
from .rebuild import Rebuild
from .reconcile import Reconcile
from .record import Record
from .recovery import Recovery
from .resp import Transaction, command_prefix
from .shard_config import SNAPSHOT_FORMAT as SNAPSHOT_FORMAT
from .shard_config import Batch, Entry, StateLostError, parse_config
from .shard_config import CommitError as CommitError
from .shard_config import ReplayMismatchError as ReplayMismatchError
from .shard_config import ShardConfig as ShardConfig
from .shard_config import StuckEntriesError as StuckEntriesError
from .shard_config import stream_id as stream_id
from .wire import COMMAND_FIELD, EVENT_FIELD, TRACE_FIELD, decode_command, dumps, encode_events

log = logging.getLogger("matching.shard")
SOCKET_TIMEOUT_S = 10.0


class Shard(Recovery, Rebuild, Reconcile):
    """One matching shard. ``run()`` until ``stop()``; or ``start()`` then ``step()`` by hand.

    ``record``: the system of record to rebuild the books from when the Redis state is lost
    (``matching/rebuild.py``); without one, a lost state starts an empty engine."""

    def __init__(
        self, config: ShardConfig, redis: Redis | None = None, *, record: Record | None = None
    ) -> None:
        self.config = config
        self.record = record
        self.epoch: str | None = None
        self.rebuilds = 0
        self.repairs = 0  # drift repairs by the reconciler (matching/reconcile.py)
        self._suspects: dict[str, str] = {}
        self._next_reconcile = time.monotonic() + config.reconcile_interval
        self._owns_redis = redis is None
        # On a Redis Cluster (redis+cluster://) every key of the shard is in the slot of
        # ``{K}``: the shard talks to that slot's master over a plain client (its raw
        # MULTI/EXEC needs one node's connection), and ``_cluster`` (a cluster client used
        # only to read the slot map) re-resolves the master in the recovery path, after a
        # failover or a MOVED. On a plain Redis nothing of this runs.
        self._cluster: Redis | None = None
        self._pinned: tuple[str, int] | None = None
        if redis is None and redis_client.is_cluster_url(config.redis_url):
            self._cluster = redis_client.connect(
                config.redis_url,
                socket_timeout=SOCKET_TIMEOUT_S,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
            )
            host, port = redis_client.parse_cluster_url(config.redis_url).nodes[0]
            redis = redis_client.node_client(self._cluster, host, port, **self._client_options())
            self._pinned = (host, port)
        self.redis: Redis = redis or Redis.from_url(config.redis_url, **self._client_options())
        p, k = config.prefix, config.shard
        self.in_key = input_key(p, k)
        self.events_key = events_key(p, k)
        self.snapshot_key = snapshot_key(p, k)
        self.applied_key = applied_key(p, k)
        self.heartbeat_key = heartbeat_key(p, k)
        self.epoch_key = epoch_key(p, k)
        # One process per shard (bourse.lease); every transaction WATCHes this key.
        self.lease = Lease(self.redis, lease_key(p, k), config.lease_ms)
        self.consumer = f"shard-{k}"
        self._xadd_prefix = command_prefix("XADD", self.events_key, "*", EVENT_FIELD, total=5)
        self._fetch_cmd = resp.pack(
            "XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", config.batch_size,
            "STREAMS", self.in_key, ">",
        )  # fmt: skip
        self.engine = Engine(config.dedup_window)
        self._label = str(config.shard)  # the shard's Prometheus label
        self.applied = "0-0"  # last input id whose events are in the events stream
        self._head = "0-0"  # last input id applied to the engine (one batch ahead at most)
        self.last_event_id = "0-0"
        self.since_snapshot = 0
        self.recoveries = 0
        self.replayed = 0
        self.replay_verified = 0
        self.replay_mismatches = 0
        self.commands = 0
        self.events = 0
        self._owned: dict[str, bool] = {}
        self._silent: dict[str, int] = {}  # see _apply_one
        self._published: dict[str, str] = {}
        self._stop = asyncio.Event()
        # False while the engine may hold changes Redis has not committed (mid-batch, mid-
        # recovery, or after a failed commit): no snapshot may be taken then.
        self._consistent = False
        self._last_snapshot = time.monotonic()
        self._next_heartbeat = 0.0

    def _client_options(self) -> dict[str, Any]:
        return {
            "decode_responses": True,
            "client_name": f"{self.config.prefix}matching-shard-{self.config.shard}",
            # No transparent retries: a re-sent XREADGROUP would skip the entries whose reply
            # was lost (they stay pending) and break input order. Errors go to recovery.
            "retry": Retry(NoBackoff(), 0),
            # Bounded: a Redis that stops answering (partitioned, paused) is an error to
            # recover from, not a wait without end (well above any BLOCK the shard uses).
            "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_connect_timeout": SOCKET_TIMEOUT_S,
        }

    async def _repin(self) -> None:
        """Cluster only: point the shard's client at the current master of its slot."""
        assert self._cluster is not None
        where = await redis_client.master_of(self._cluster, self.in_key)
        if where == self._pinned:
            return
        log.warning("shard %s: slot master is now %s:%s", self.config.shard, *where)
        old, self._pinned = self.redis, where
        self.redis = redis_client.node_client(self._cluster, *where, **self._client_options())
        self.lease.redis = self.redis
        with contextlib.suppress(Exception):
            await old.aclose()

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to finish its batch, snapshot and return."""
        self._stop.set()

    async def start(self) -> None:
        """Wait for Redis, check the state's epoch (rebuilding it from the record when it is
        lost), create the consumer group if needed and recover the engine."""
        await self._wait_for_redis()
        await self._acquire_lease()
        try:
            await self.ensure_state()
            await self.recover()
        except (RedisError, OSError) as exc:
            if self._stop.is_set():
                raise
            log.warning("shard %s: start failed (%r); retrying", self.config.shard, exc)
            await self._recover_after_error()
        await self.heartbeat()

    async def _wait_for_redis(self) -> None:
        delay = 0.05
        while True:
            try:
                if self._cluster is not None:
                    await self._repin()
                await self.redis.ping()
                return
            except (RedisError, OSError) as exc:  # not up yet, or loading its dataset
                if self._stop.is_set():
                    raise
                log.warning("shard %s: waiting for redis (%r)", self.config.shard, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _acquire_lease(self) -> None:
        """One process per shard: take the lease, waiting for a crashed holder's to expire."""

        def waiting(holder: object) -> None:
            log.warning("shard %s: waiting for the lease held by %s", self.config.shard, holder)

        if not await self.lease.acquire(self._stop.is_set, on_wait=waiting):
            raise LeaseLostError("stopped while waiting for the lease")

    async def run(self) -> None:
        """Start, then process until ``stop()``; then snapshot and release the shard.

        On a Redis error the engine may be ahead of Redis (a transaction in flight), so the
        shard rebuilds it from Redis (snapshot + replay + pending entries), exactly as a
        restarted process would, and carries on."""
        try:
            await self.start()
            while True:
                try:
                    await self._pump()
                    break
                except (RedisError, OSError, LeaseLostError) as exc:
                    # A lease that expired while Redis was unreachable (or paused) is taken
                    # again if nobody else took it meanwhile; else recovery ends the process.
                    if self._stop.is_set():
                        raise
                    log.warning("shard %s: redis error %r; recovering", self.config.shard, exc)
                    await self._recover_after_error()
        finally:
            await self.shutdown()

    async def _recover_after_error(self) -> None:
        delay = 0.1
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            try:
                await self._wait_for_redis()
                if not await self.lease.reclaim():
                    raise LeaseLostError(f"shard {self.config.shard}: lease lost")
                await self.ensure_state()
                await self.recover()
                return
            except (RedisError, OSError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("shard %s: recovery failed (%r); retrying", self.config.shard, exc)

    async def shutdown(self) -> None:
        """Snapshot (if the engine is consistent with Redis and we still own the shard), drop
        the heartbeat and release the lease."""
        try:
            if self.lease.held:
                if self.since_snapshot and self._consistent:
                    await self.snapshot()
                await self.redis.delete(self.heartbeat_key)
                await self.lease.release()
        finally:
            if self._owns_redis:
                await self.redis.aclose()
            if self._cluster is not None:
                await self._cluster.aclose()

    def _snapshot_due(self, now: float) -> bool:
        cfg = self.config
        return bool(self.since_snapshot) and bool(
            (cfg.snapshot_every and self.since_snapshot >= cfg.snapshot_every)
            or (cfg.snapshot_interval and now - self._last_snapshot >= cfg.snapshot_interval)
        )

    async def _housekeeping(self) -> None:
        """Heartbeat and snapshot when due (only call with the engine consistent)."""
        now = time.monotonic()
        if now >= self._next_heartbeat:
            await self.heartbeat()
        if self._snapshot_due(now):
            await self.snapshot()
        if self._reconcile_due(now):
            await self.reconcile()

    async def heartbeat(self) -> None:
        """Refresh the lease and the liveness key (``{"pid", "applied", "time"}``, short TTL)."""
        self._next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        await self.lease.refresh()
        value = dumps(
            {
                "pid": os.getpid(),
                "applied": self.applied,
                "time": time.time(),
                "epoch": self.epoch,
                "rebuilds": self.rebuilds,
                "repairs": self.repairs,
            }
        )
        await self.redis.set(self.heartbeat_key, value, px=self.config.heartbeat_ttl_ms)
        metrics.shard_book_orders.labels(self._label).set(len(self.engine.orders))

    # ------------------------------------------------------------------ the loop

    async def step(self, block_ms: int | None = None) -> int:
        """Fetch one batch of new input (waiting up to ``block_ms`` for some), process and
        commit it (not pipelined), then refresh the lease and heartbeat and snapshot when
        due; returns the number of entries."""
        raw = resp.RawConnection(self.redis)
        await raw.open()
        broken = True
        try:
            entries = await self._fetch(raw, block_ms)
            broken = False
        finally:
            await raw.close(broken)
        if entries:
            await self._commit(self._prepare(entries))
        await self._housekeeping()
        return len(entries)

    async def _guard(self, raw: resp.RawConnection) -> None:
        """WATCH the lease and check we hold it: the next EXEC only runs if we still do."""
        try:
            await raw.guard(self.lease.key, self.lease.token)
        except resp.GuardError as exc:
            raise self.lease.lost(str(exc)) from exc

    async def _fetch(self, raw: resp.RawConnection, block_ms: int | None) -> list[Entry]:
        """New entries for this consumer. The XREADGROUP runs inside a lease-guarded MULTI,
        so a process that lost the shard cannot take deliveries (which would leave entries
        pending out of order); the wait for input is a plain XREAD, which changes nothing."""
        if block_ms is not None:
            await raw.send(
                resp.pack(
                    "XREAD", "COUNT", 1, "BLOCK", block_ms, "STREAMS", self.in_key, self._head
                )
            )
            if not resp.parse_stream_reply(await raw.read()):
                return []
        await self._guard(raw)
        tx = Transaction()
        tx.add_packed(self._fetch_cmd)
        await raw.send(tx.payload())
        entries = resp.parse_stream_reply((await self._read_exec_raw(raw, tx, self._head))[0])
        if not entries and block_ms is not None:
            raise StuckEntriesError(
                f"entries after {self._head} were delivered but never applied: recovering"
            )
        return entries

    async def _pump(self) -> None:
        """The main loop, pipelined on one connection.

        Each transaction commits the batch just applied *and* fetches the next input
        (XREADGROUP inside the same lease-guarded MULTI). While Redis executes it, Python
        applies the batch fetched by the previous one; so the engine runs at most one batch
        ahead of Redis, and Redis and Python work at the same time. To heartbeat, snapshot
        or stop, the pipeline drains first, so those see the engine and Redis in step."""
        block_ms = self.config.block_ms
        raw = resp.RawConnection(self.redis)
        await raw.open()
        broken = True
        try:
            entries = await self._fetch(raw, block_ms)
            flight: tuple[Transaction, Batch | None] | None = None
            while True:
                batch = self._prepare(entries) if entries else None
                entries = []
                if flight is not None:
                    tx, committed = flight
                    flight = None
                    result = await self._read_exec_raw(raw, tx, self._head)
                    if committed is not None:
                        self._confirm(committed, result)
                    entries = resp.parse_stream_reply(result[-1])
                now = time.monotonic()
                if self._stop.is_set() or now >= self._next_heartbeat or self._snapshot_due(now):
                    if batch is not None:
                        await self._guard(raw)
                        await raw.send(batch.tx.payload())
                        self._confirm(batch, await self._read_exec(raw, batch))
                    # Nothing in flight, nothing applied beyond Redis: consistent.
                    await self._housekeeping()
                    if self._stop.is_set():
                        break  # ``entries`` stay pending for this consumer: first next start
                    if not entries:
                        entries = await self._fetch(raw, block_ms)
                    continue
                if batch is None and not entries:
                    entries = await self._fetch(raw, block_ms)  # idle: wait for input
                    continue
                await self._guard(raw)
                tx = batch.tx if batch is not None else Transaction()
                tx.add_packed(self._fetch_cmd)
                await raw.send(tx.payload())
                flight = (tx, batch)
            broken = False
        finally:
            await raw.close(broken)

    async def _read_exec(self, raw: resp.RawConnection, batch: Batch) -> list[Any]:
        return await self._read_exec_raw(raw, batch.tx, batch.last)

    async def _read_exec_raw(
        self, raw: resp.RawConnection, tx: Transaction, last: str
    ) -> list[Any]:
        try:
            return await raw.read_exec(tx, guarded=True)
        except resp.GuardError as exc:
            raise self.lease.lost(str(exc)) from exc
        except ResponseError as exc:
            if resp.redirected(exc):  # the slot moved (cluster): re-resolve, then recover
                raise resp.SlotMovedError(f"shard {self.config.shard}: {exc}") from exc
            if "NOGROUP" in str(exc):  # the input stream or its group vanished: Redis lost it
                raise StateLostError(f"shard {self.config.shard}: {exc}") from exc
            raise CommitError(f"transaction ending {last} was refused: {exc!r}") from exc

    def _apply_one(self, eid: str, fields: dict[str, str] | None) -> list[Event]:
        cmd = decode_command(fields.get(COMMAND_FIELD) if fields else None)
        asset = cmd.get("asset_id")
        if type(asset) is str:
            owned = self._owned.get(asset)
            if owned is None:
                owned = shard_for(asset, self.config.shards) == self.config.shard
                if len(self._owned) < 100_000:
                    self._owned[asset] = owned
            if not owned:
                oid, uid, ts = cmd.get("order_id"), cmd.get("user_id"), cmd.get("ts")
                return [
                    (
                        REJECTED,
                        asset,
                        oid if type(oid) is str else None,
                        uid if type(uid) is str else None,
                        WRONG_SHARD,
                        ts if type(ts) is int else 0,
                    )
                ]
        events = self.engine.apply(cmd)
        if not events and cmd.get("cmd") == RESYNC and type(asset) is str:
            # A repair has no event of its own, but the book changed: publish its depth.
            ts = cmd.get("ts")
            self._silent[asset] = ts if type(ts) is int else 0
        return events

    def _prepare(self, entries: list[Entry]) -> Batch:
        """Apply a batch to the engine and build its transaction: XADD every event, XACK
        the batch, SET the applied id, SET/PUBLISH the changed books."""
        ids = [e[0] for e in entries]
        if stream_id(ids[0]) <= stream_id(self._head):
            # Already applied (the consumer group was recreated?): acknowledge, skip.
            head = stream_id(self._head)
            entries = [e for e in entries if stream_id(e[0]) > head]
        if any(fields is None for _, fields in entries):
            # Deleted while pending (XDEL): a replay would not see it either; acknowledge only.
            entries = [e for e in entries if e[1] is not None]
        self._consistent = False
        out: list[str] = []
        traced: dict[int, str] = {}  # index in `out` → the traceparent its entry carries
        touched: dict[str, int] = {}
        self._silent = touched  # books changed by commands without events (RESYNC)
        apply_one = self._apply_one
        tracing_on = tracing.active()
        for eid, fields in entries:
            parent = fields.get(TRACE_FIELD) if tracing_on and fields else None
            if parent:
                with tracing.child_span("shard.apply", parent, shard=self.config.shard) as span:
                    events = apply_one(eid, fields)
                onward = tracing.parent_of(span) if span is not None else None
                if onward:
                    traced.update(dict.fromkeys(range(len(out), len(out) + len(events)), onward))
            else:
                events = apply_one(eid, fields)
            if events:
                out.extend(encode_events(events, eid))
                first_ev = events[0]
                asset = first_ev[1]
                if asset is not None:
                    touched[asset] = first_ev[-1]
        last = entries[-1][0] if entries else self._head
        self._head = last
        tx = Transaction()
        if not traced:
            tx.add_many(self._xadd_prefix, out)
        else:  # the events of a traced command carry the shard span's context onwards
            for i, payload in enumerate(out):
                onward = traced.get(i)
                if onward:
                    tx.add("XADD", self.events_key, "*", EVENT_FIELD, payload, TRACE_FIELD, onward)
                else:
                    tx.add_many(self._xadd_prefix, [payload])
        tx.add("XACK", self.in_key, GROUP, *ids)
        tx.add("SET", self.applied_key, last)
        for asset, ts in touched.items():
            doc = self._book_doc(asset, last, ts)
            if doc is not None:
                tx.add("SET", book_key(self.config.prefix, self.config.shard, asset), doc)
                tx.add("PUBLISH", depth_channel(self.config.prefix, asset), doc)
        return Batch(tx, last, len(entries), len(out))

    def _confirm(self, batch: Batch, result: list[Any] | None) -> None:
        """Record a committed batch (``result``: its EXEC reply, None if it was lost)."""
        if batch.events and result is not None:
            self.last_event_id = result[batch.events - 1]
        self.applied = batch.last
        self.commands += batch.commands
        metrics.shard_commands.labels(self._label).inc(batch.commands)
        self.events += batch.events
        self.since_snapshot += batch.commands
        self._consistent = self.applied == self._head

    async def _commit(self, batch: Batch) -> None:
        """MULTI/EXEC a batch; on a connection error, find out whether it happened and retry
        if not (EXEC is atomic and the applied id says which)."""
        delay = 0.05
        while True:
            try:
                result = await resp.execute(
                    self.redis, batch.tx, (self.lease.key, self.lease.token)
                )
                self._confirm(batch, result)
                return
            except resp.GuardError as exc:
                raise self.lease.lost(str(exc)) from exc
            except ResponseError as exc:
                if resp.redirected(exc):
                    raise resp.SlotMovedError(f"shard {self.config.shard}: {exc}") from exc
                raise CommitError(f"batch ending {batch.last} was refused: {exc!r}") from exc
            except (OSError, RedisError) as exc:
                log.warning("shard %s: commit failed (%r); checking", self.config.shard, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                try:
                    if await self.redis.get(self.applied_key) == batch.last:
                        tail = await self.redis.xrevrange(self.events_key, count=1)
                        self.last_event_id = tail[0][0] if tail else self.last_event_id
                        self._confirm(batch, None)
                        return
                except (OSError, RedisError):
                    continue

    def _book_doc(self, asset: str, input_id: str, ts: int) -> str | None:
        """The market-data document of an asset, or None if unchanged since last published."""
        book = self.engine.books.get(asset)
        if book is None:
            return None
        cfg = book.config
        ps, qs = cfg.price_scale, cfg.qty_scale
        bids, asks = book.depth(self.config.depth_levels)
        doc: dict[str, Any] = {
            "asset_id": asset,
            "bids": [[format_fixed(p, ps), format_fixed(q, qs), n] for p, q, n in bids],
            "asks": [[format_fixed(p, ps), format_fixed(q, qs), n] for p, q, n in asks],
            "best_bid": format_fixed(bids[0][0], ps) if bids else None,
            "best_ask": format_fixed(asks[0][0], ps) if asks else None,
            "last_price": format_fixed(book.last_price, ps) if book.last_price else None,
            "reference_price": format_fixed(book.ref_price, ps) if book.ref_price else None,
            # The freshest of the two: the collar's anchor (and what placement anchors on).
            "mark": format_fixed(book.mark, ps) if book.mark else None,
        }
        body = dumps(doc)
        if self._published.get(asset) == body:
            return None
        self._published[asset] = body
        doc["input_id"] = input_id
        doc["ts"] = ts
        return dumps(doc)


async def run_shard(config: ShardConfig) -> Shard:
    """Run a shard until SIGTERM / SIGINT (finish the batch, snapshot, exit)."""
    shard = Shard(config)
    log.info("shard %s: the %s matching core", config.shard, CORE_KIND)  # see core/__init__.py
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shard.stop)
    await shard.run()
    return shard


def main(argv: Sequence[str] | None = None) -> int:
    config, log_level = parse_config(argv, description=__doc__)
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(message)s")
    tracing.configure("bourse-shard")
    asyncio.run(run_shard(config))
    tracing.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
