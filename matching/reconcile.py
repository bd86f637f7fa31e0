"""The periodic reconciler: the engine's live orders against the record's open ones, repaired
both ways, every repair logged and counted.

Every ``reconcile_interval`` seconds (in the loop's housekeeping, with the engine in step with
Redis) the shard asks the record (``matching.record.Record.drift``) which of its open orders
the engine does not have live (**missing**: a command lost with Redis' last writes, which the
outbox had marked sent) and which of the engine's live orders the record holds final
(**ended**: the events that ended it were settled, then lost with Redis), and which live
orders it has with another open quantity (**resync**). The record answers only once
settlement has reached the engine's last event, so it shows all the engine did: a
difference left then is drift, never a fill in flight.

Linked orders (brackets, OTO, OCO) are compared like any order, their legs waiting for the
entry's first fill included (live, with nothing to compare yet). A missing linked order goes
back with its group, as the rebuild sends it, and only when none of the group is live; one
the record holds final is ended alone (a RESYNC to remaining 0, not a CANCEL, which would
take its whole group: a bracket's executed entry leaves its exits live).

**The remaining-quantity rule: PostgreSQL wins.** What it settled is what happened; a fill
the engine made that was never settled did not (the rebuild's rule, docs/ARCHITECTURE.md
"Losing Redis": the fence dropped its events, nobody was shown it). So the engine's order
takes the record's filled and remaining quantities (``RESYNC``, in place, keeping its time
priority: it was there), with no event (the record already has them).

A suspect is repaired only when it is seen in two rounds in a row and the engine still agrees
(an order in flight, its command still in the stream, is not a drift): a missing order is put
back (``Record.restore``: the rebuild's command for it, PostgreSQL wins), an ended one is
cancelled in the engine, a resync is sent with the record's quantities. All go through the
input stream like any command, so replay stays
deterministic. Each repair is logged (order ids) and counted (``repairs``, and in the record).

A mixin of ``matching.shard.Shard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from bourse.clock import now_ns

from .core.engine import Engine
from .record import Record, RecordUnavailableError
from .shard_config import ShardConfig
from .wire import COMMAND_FIELD, cancel, encode_command, resync

log = logging.getLogger("matching.shard")
LP_PREFIX = "lp-"  # the liquidity provider's orders live only in the engine
RECORD_BUDGET_S = 1.0  # the longest a round may hold the loop waiting for the record


class Reconcile:
    redis: Redis
    config: ShardConfig
    engine: Engine
    record: Record | None
    in_key: str
    last_event_id: str
    repairs: int
    _suspects: dict[str, str]
    _next_reconcile: float

    def _reconcile_due(self, now: float) -> bool:
        return (
            self.record is not None
            and self.config.reconcile_interval > 0
            and now >= self._next_reconcile
        )

    async def reconcile(self) -> int:
        """One round; returns how many repairs it sent."""
        assert self.record is not None
        cfg = self.config
        self._next_reconcile = time.monotonic() + cfg.reconcile_interval
        live: dict[str, int | None] = {
            oid: o.remaining
            for oid, o in self.engine.orders.items()
            if not oid.startswith(LP_PREFIX)
        }
        for book in self.engine.books.values():
            for oid in book.pending:  # a leg waiting for its entry's first fill: live too
                live[oid] = None
        try:
            # Bounded: the loop waits for this (PostgreSQL down must not stall matching).
            drift = await asyncio.wait_for(
                self.record.drift(cfg.shard, cfg.shards, self.last_event_id, live),
                RECORD_BUDGET_S,
            )
        except (RecordUnavailableError, TimeoutError) as exc:
            log.warning("shard %s: reconciler skipped (%s)", cfg.shard, exc)
            return 0
        if drift is None:
            return 0  # settlement behind the engine: next round
        orders = self.engine.orders
        now: dict[str, str] = {}
        for oid in drift.missing:
            if oid not in orders:
                now[oid] = "missing"
        for oid in drift.ended:
            if oid in orders:
                now[oid] = "ended"
        for oid, (filled, remaining) in drift.resync.items():
            if oid in orders and orders[oid].remaining != remaining:
                now[oid] = f"resync {filled} {remaining}"
        confirmed = {oid: kind for oid, kind in now.items() if self._suspects.get(oid) == kind}
        self._suspects = {oid: kind for oid, kind in now.items() if oid not in confirmed}
        if not confirmed:
            return 0
        commands: list[Mapping[str, Any]] = []
        missing = frozenset(o for o, k in confirmed.items() if k == "missing")
        if missing:
            try:
                commands += await asyncio.wait_for(
                    self.record.restore(cfg.shard, cfg.shards, missing), RECORD_BUDGET_S
                )
            except (RecordUnavailableError, TimeoutError) as exc:
                log.warning("shard %s: reconciler could not restore (%s)", cfg.shard, exc)
                return 0
        ts = now_ns()
        for oid, kind in sorted(confirmed.items()):
            if kind == "ended":
                commands.append(dict(cancel(oid, orders[oid].asset_id, ts=ts)))
            elif kind.startswith("resync"):
                filled, remaining = drift.resync[oid]
                asset = orders[oid].asset_id
                commands.append(dict(resync(oid, asset, filled=filled, remaining=remaining, ts=ts)))
        if not commands:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for cmd in commands:
            pipe.xadd(self.in_key, {COMMAND_FIELD: encode_command(cmd)})
        await pipe.execute()
        self.repairs += len(confirmed)
        for oid, kind in sorted(confirmed.items()):
            if kind == "missing":
                what = "put back from the record"
            elif kind == "ended":
                what = "cancelled (record: final)"
            else:
                what = "filled {} remaining {} as the record has it".format(*kind.split()[1:])
            log.warning("shard %s: reconciler repaired order %s: %s", cfg.shard, oid, what)
        with contextlib.suppress(RecordUnavailableError, TimeoutError):  # logged above
            await asyncio.wait_for(
                self.record.count_repairs(cfg.shard, len(confirmed)), RECORD_BUDGET_S
            )
        return len(confirmed)
