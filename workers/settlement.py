"""The settlement process: applies the shards' events, relays the outbox, expires DAY orders.

    python -m workers.settlement [--shards 0,1]   (DATABASE_URL / REDIS_URL from the environment)

- ``SettlementConsumer`` reads every shard's events stream through the consumer group
  ``settlement`` in batches; per batch, ONE PostgreSQL transaction (``models.settlement``) and
  only after its commit the XACK and the users' notices (Redis PUBLISH on
  ``<P>orders:<user_id>``, read by ``orderUpdates``). On start it first re-reads its pending
  entries (delivered, never acknowledged): the PostgreSQL cursor skips those already applied;
  a pending entry the stream no longer has (lost with an AOF's last second, trimmed) is
  acknowledged, so it cannot hold the trimmer back.
- ``OutboxRelay`` sends outbox commands nobody sent: the API sends right after its commit, so
  only rows older than a grace period (a crash between commit and send) or queued orders whose
  market has opened are picked, with SKIP LOCKED so several relays can run. The shard ignores a
  repeated order id, so a resend after a send that did happen is harmless.
- ``EventTrimmer`` trims the events streams behind every consumer group and the shard's
  latest snapshot, once a minute; ``OrderEventsPruner`` deletes order events (the log behind
  ``orderUpdates``' cursors) past their 30 days, hourly.
- ``DayExpiry`` sends ``EXPIRE_DAY`` for every asset once per close (US equities: the session
  close; 24x7 assets: midnight UTC), deduplicated with a Redis key per asset and close. On US
  equities the regular close (16:00) sends it with ``session: REGULAR``, which leaves the DAY
  orders flagged for extended hours; the end of after-hours (20:00, 17:00 on early-close days)
  sends it for every DAY order left.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from time import perf_counter
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bourse import metrics, redis_client, tracing
from bourse.clock import utcnow
from bourse.keys import (
    engine_session_key,
    events_key,
    expiry_key,
    input_key,
    settlement_lease_key,
    snapshot_key,
    user_channel,
)
from bourse.lease import Lease, LeaseLostError
from bourse.process import service_main
from bourse.settings import Settings
from matching.client import group_lag
from matching.core.constants import EXTENDED, REGULAR
from matching.wire import FillEvent, read_event
from models.assets import Asset
from models.availability import is_unavailable
from models.calendars import ALWAYS_OPEN, Session, calendar
from models.orders import FINAL_STATUSES, RELAY_GRACE, Outbox, OutboxEntry
from models.orders import events as order_events
from models.services import Services, open_services
from models.settlement import Entry, Notice, Settlement, stream_id_key

log = structlog.get_logger("bourse.settlement")
GROUP = "settlement"
CONSUMER = "settlement"


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class SettlementConsumer:
    def __init__(self, services: Services, shards: Sequence[int], *, batch_size: int = 500) -> None:
        self.services = services
        self.prefix = services.settings.redis_prefix
        self.streams = [events_key(self.prefix, k) for k in shards]
        self.batch_size = batch_size
        self.pace = services.settings.settlement_pace_ms / 1000
        self.settlement = Settlement(services.ledger, on_fills=services.on_fills)
        self._pending_done = False
        self._read_at = 0.0  # the event loop's clock when the last batch was read

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.services.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self, block_ms: int | None) -> list[tuple[str, str, str, str | None]]:
        redis = self.services.redis
        while not self._pending_done:
            raw = await redis_client.xreadgroup(
                redis, GROUP, CONSUMER, dict.fromkeys(self.streams, "0"), count=self.batch_size
            )
            entries = _flatten(raw)
            gone = _gone(raw)
            if gone:
                # Pending entries the stream no longer has (lost with an AOF's last second, or
                # trimmed): nothing to apply (a rebuild's fence dropped what was lost), and
                # left pending they would bound every trim of the stream for ever.
                pipe = redis.pipeline(transaction=False)
                for stream, ids in gone.items():
                    pipe.xack(stream, GROUP, *ids)
                await pipe.execute()
                log.warning(
                    "pending events gone from the stream; acknowledged",
                    entries=sum(len(ids) for ids in gone.values()),
                )
            if entries:
                return entries
            if not gone:
                self._pending_done = True
        raw = await redis_client.xreadgroup(
            redis,
            GROUP,
            CONSUMER,
            dict.fromkeys(self.streams, ">"),
            count=self.batch_size,
            block=block_ms,
        )
        return _flatten(raw)

    async def step(self, block_ms: int | None = None) -> int:
        """Settle one batch; returns how many entries it read."""
        entries = await self._read(block_ms)
        if not entries:
            return 0
        self._read_at = asyncio.get_running_loop().time()
        decoded = [
            (stream, entry_id, read_event(payload)) for stream, entry_id, payload, _ in entries
        ]
        started = perf_counter()
        with contextlib.ExitStack() as spans:
            onward = _trace_spans(spans, decoded, [t for *_, t in entries])
            async with self.services.sessionmaker() as s, s.begin():
                settled = await self.settlement.apply(s, decoded)
        notices = settled.notices
        _count_settled(decoded, notices, perf_counter() - started)
        pipe = self.services.redis.pipeline(transaction=False)
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, *_ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            pipe.xack(stream, GROUP, *ids)
        for notice in notices:
            traced = onward.get(str(notice.order.id)) if onward else None
            notice = replace(notice, trace=traced) if traced else notice
            redis_client.publish(
                pipe, user_channel(self.prefix, str(notice.user_id)), notice.to_json()
            )
        await pipe.execute()
        await self.services.notifier.announce(settled.notifications)
        return len(entries)

    async def _pace(self, read: int, stop: asyncio.Event) -> None:
        """Batching by load (`Settings.settlement_pace_ms`): after a batch of two or more that
        did not fill up, the next one gathers what arrives until `pace` after this one was
        read. One entry (a quiet market: nothing to share the batch with) or a full batch
        (lag) goes straight on; a stop ends the pause."""
        if not 1 < read < self.batch_size or self.pace <= 0:
            return
        rest = self._read_at + self.pace - asyncio.get_running_loop().time()
        if rest > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rest)

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_groups()
        while not stop.is_set():
            try:
                await self._pace(await self.step(block_ms=200), stop)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis unavailable; retrying", error=str(exc))
                self._pending_done = False
                await asyncio.sleep(0.5)
                await _retrying("ensure_groups", self.ensure_groups)
            except ResponseError as exc:
                if is_unavailable(exc):
                    # A Redis Cluster failing over (CLUSTERDOWN, TRYAGAIN): as Redis down.
                    log.warning("redis unavailable; retrying", error=str(exc))
                    self._pending_done = False
                    await asyncio.sleep(0.5)
                    await _retrying("ensure_groups", self.ensure_groups)
                    continue
                if "NOGROUP" not in str(exc):
                    raise
                # Redis restarted empty: the group goes again at the start of the (new)
                # stream; the shard's rebuild fenced the old events (models.engine_record).
                log.warning("settlement group missing; recreating", error=str(exc))
                self._pending_done = False
                await _retrying("ensure_groups", self.ensure_groups)
                await asyncio.sleep(0.2)
            except SQLAlchemyError as exc:
                # A deadlock victim, a lost connection: nothing was committed or acknowledged,
                # so the same entries come again (as pending) and are applied once.
                log.warning("settlement batch failed; retrying", error=str(exc))
                self._pending_done = False
                await asyncio.sleep(0.5)


_SHARD_TAG = re.compile(r"\{(\d+)\}")


def _count_settled(decoded: Sequence[Entry], notices: Sequence[Notice], seconds: float) -> None:
    """Prometheus: fills per shard, orders reaching a final status, the batch's time."""
    shards: dict[str, int] = {}
    for stream, _, event in decoded:
        tag = _SHARD_TAG.search(stream)
        shard = tag.group(1) if tag else "?"
        shards.setdefault(shard, 0)
        if isinstance(event, FillEvent):
            shards[shard] += 1
    for shard, fills in shards.items():
        if fills:
            metrics.fills_settled.labels(shard).inc(fills)
        metrics.settlement_batch_seconds.labels(shard).observe(seconds)
    for notice in notices:
        if notice.order.status in FINAL_STATUSES:
            metrics.orders_finished.labels(notice.order.status.value).inc()


def _trace_spans(
    spans: contextlib.ExitStack, decoded: Sequence[Entry], parents: Sequence[str | None]
) -> dict[str, str]:
    """One settlement span per trace the batch's events carry (bourse.tracing), open for
    the batch's commit; returns order id → the traceparent its notices carry onwards."""
    if not tracing.active() or not any(parents):
        return {}
    onward_of: dict[str, str] = {}
    by_order: dict[str, str] = {}
    for (_, _, event), parent in zip(decoded, parents, strict=True):
        if not parent:
            continue
        if parent not in onward_of:
            span = spans.enter_context(tracing.child_span("settlement.apply", parent))
            onward_of[parent] = (tracing.parent_of(span) if span is not None else None) or parent
        orders = (
            [event.maker_order_id, event.taker_order_id]
            if isinstance(event, FillEvent)
            else [getattr(event, "order_id", None)]
        )
        for order_id in orders:
            if order_id:
                by_order[order_id] = onward_of[parent]
    return by_order


def _gone(raw: Any) -> dict[str, list[str]]:
    """The pending entries of a read whose stream entry is gone (no fields), per stream."""
    out: dict[str, list[str]] = {}
    for stream, items in raw or []:
        for entry_id, fields in items:
            if not fields:
                out.setdefault(_s(stream), []).append(_s(entry_id))
    return out


def _flatten(raw: Any) -> list[tuple[str, str, str, str | None]]:
    out: list[tuple[str, str, str, str | None]] = []
    for stream, items in raw or []:
        for entry_id, fields in items:
            if not fields:
                continue  # a pending entry trimmed from the stream
            payload = fields.get(b"event", fields.get("event"))
            trace = fields.get(b"trace", fields.get("trace"))
            out.append((_s(stream), _s(entry_id), _s(payload), _s(trace) if trace else None))
    return out


class OutboxRelay:
    """Schedules the outbox's relay (``models.orders.outbox.Outbox.relay``: the table and its
    send logic live together there)."""

    def __init__(
        self,
        services: Services,
        *,
        grace: timedelta = RELAY_GRACE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.services = services
        self.grace = grace
        self._clock = clock
        self._outbox = Outbox(services.sessionmaker, services.exchange)

    async def step(self, limit: int = 500) -> int:
        return await self._outbox.relay(grace=self.grace, limit=limit, clock=self._clock)


def last_close(calendar_name: str, now: datetime) -> datetime:
    """The most recent moment DAY orders of this calendar had to end."""
    if calendar_name == ALWAYS_OPEN:
        return datetime.combine(now.astimezone(UTC).date(), time(0), UTC)
    cal = calendar(calendar_name)
    previous_close = getattr(cal, "previous_close", None)
    if previous_close is None:  # pragma: no cover - every closing calendar has one
        return now
    result: datetime = previous_close(now)
    return result


def last_day_end(calendar_name: str, now: datetime) -> datetime:
    """The most recent end of a trading day (after-hours included): when every DAY order of
    this calendar, extended-hours ones too, had to end."""
    if calendar_name == ALWAYS_OPEN:
        return last_close(calendar_name, now)
    return calendar(calendar_name).previous_extended_close(now)


class DayExpiry:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def step(self, now: datetime | None = None) -> list[str]:
        """Send EXPIRE_DAY for each asset whose latest close has not been handled yet: every
        DAY order at the end of the trading day, the regular ones only at the regular close."""
        at = now or utcnow()
        async with self.services.sessionmaker() as s:
            assets = (await s.scalars(select(Asset))).all()
        redis: Redis = self.services.redis
        prefix = self.services.settings.redis_prefix
        whole_day: list[str] = []
        regular: list[str] = []
        # The Redis markers only save resending: each command names the close it handles and
        # ends only orders placed before it, so a marker lost with Redis resends harmlessly.
        closes: dict[str, datetime] = {}
        for asset in assets:
            close = last_close(asset.market_calendar, at)
            end = last_day_end(asset.market_calendar, at)
            ttl = 14 * 86400
            closed = await redis.set(
                expiry_key(prefix, asset.symbol, close.isoformat()), "1", nx=True, ex=ttl
            )
            ended = await redis.set(
                expiry_key(prefix, asset.symbol, f"end-{end.isoformat()}"), "1", nx=True, ex=ttl
            )
            # An end older than the latest regular close belongs to an earlier day (the
            # process was down): expiring everything now would also end today's after-hours
            # orders, so only the regular ones go, and the rest at today's end.
            if ended and end >= close:
                whole_day.append(asset.symbol)
                closes[asset.symbol] = end
            elif closed:
                regular.append(asset.symbol)
                closes[asset.symbol] = close
        if whole_day:
            await self.services.exchange.expire_day(whole_day, closes=closes)
        if regular:
            await self.services.exchange.expire_day(regular, session=REGULAR, closes=closes)
        if whole_day or regular:
            log.info("day orders expired", assets=len(whole_day), regular_close=len(regular))
        return whole_day + regular


class EngineSessions:
    """Tells each asset's shard when the regular session starts and ends (``SESSION``): outside
    it the engine parks the orders not flagged extended_hours, so a regular GTC order resting
    from the day neither trades against after-hours or pre-market orders nor triggers on their
    trades (issue 14's known bug). Sent on every change of an asset's session as the calendar
    says it (a Redis key remembers the last one; sending twice is harmless), US equities only
    (24x7 calendars are always regular), and only with ``BOURSE_MARKET_HOURS=calendar``: with
    ``always`` every market counts as open (the demo at night, the tests)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def step(self, now: datetime | None = None) -> list[tuple[str, str]]:
        if self.services.settings.market_hours != "calendar":
            return []
        at = now or utcnow()
        async with self.services.sessionmaker() as s:
            assets = (await s.scalars(select(Asset))).all()
        redis: Redis = self.services.redis
        prefix = self.services.settings.redis_prefix
        changes: list[tuple[str, str]] = []
        for asset in assets:
            if asset.market_calendar == ALWAYS_OPEN:
                continue
            regular = calendar(asset.market_calendar).session(at) is Session.REGULAR
            which = REGULAR if regular else EXTENDED
            if _s(await redis.get(engine_session_key(prefix, asset.symbol))) != which:
                changes.append((asset.symbol, which))
        if changes:
            await self.services.exchange.sessions(changes)
            for symbol, which in changes:
                await redis.set(engine_session_key(prefix, symbol), which)
            log.info("engine sessions", changes=len(changes))
        return changes


class EventTrimmer:
    """Keeps the shards' event streams from growing without end (the shard never trims them:
    their consumers own that). An entry may go once every consumer group has acknowledged it
    and the shard's latest snapshot no longer needs it for replay verification: XTRIM MINID
    to the oldest of (each group's oldest pending entry or last delivered entry, the
    snapshot's ``events_id``). No snapshot yet, or no settlement group yet: nothing is trimmed.
    """

    def __init__(
        self, services: Services, shards: Sequence[int], *, approximate: bool = True
    ) -> None:
        self.services = services
        self.shards = list(shards)
        # "~": Redis trims whole radix-tree nodes only (cheap; it may keep a few more entries).
        self.approximate = approximate

    async def safe_point(self, shard: int) -> str | None:
        redis = self.services.redis
        prefix = self.services.settings.redis_prefix
        raw = await redis.get(snapshot_key(prefix, shard))
        if not raw:
            return None
        events_id = str(json.loads(raw).get("events_id") or "0-0")
        if events_id == "0-0":
            return None
        stream = events_key(prefix, shard)
        try:
            groups = await redis.xinfo_groups(stream)
        except ResponseError:
            return None  # no stream yet
        names = {_s(g["name"]) for g in groups}
        if GROUP not in names:
            return None
        bounds = [events_id]
        for g in groups:
            # The group's pending entries may all be acknowledged between XINFO and XPENDING
            # (then XPENDING's min is None): its last-delivered id bounds it in that case.
            oldest = None
            if int(g.get("pending") or 0):
                oldest = (await redis.xpending(stream, _s(g["name"])))["min"]
            bounds.append(_s(oldest if oldest is not None else g["last-delivered-id"]))
        return min(bounds, key=stream_id_key)

    async def step(self) -> int:
        removed = 0
        for shard in self.shards:
            bound = await self.safe_point(shard)
            if bound is None or bound == "0-0":
                continue
            stream = events_key(self.services.settings.redis_prefix, shard)
            removed += int(
                await self.services.redis.xtrim(stream, minid=bound, approximate=self.approximate)
            )
        if removed:
            log.info("event streams trimmed", entries=removed)
        return removed


class LagProbe:
    """Prometheus gauges read off Redis and PostgreSQL: each shard's unapplied input and
    unsettled events (the consumer groups' lag), and the outbox's unsent commands."""

    def __init__(self, services: Services, shards: Sequence[int]) -> None:
        self.services = services
        self.shards = list(shards)

    async def step(self) -> None:
        redis, prefix = self.services.redis, self.services.settings.redis_prefix
        for shard in self.shards:
            for key, group, gauge in (
                (input_key(prefix, shard), "matching", metrics.shard_input_lag),
                (events_key(prefix, shard), GROUP, metrics.settlement_lag),
            ):
                lag = await group_lag(redis, key, group)
                if lag is not None:  # None: no stream or group yet
                    gauge.labels(str(shard)).set(lag)
        async with self.services.sessionmaker() as s:
            unsent = await s.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.sent_at.is_(None))
            )
        metrics.outbox_unsent.set(unsent or 0)


class OrderEventsPruner:
    """Deletes order events past their retention (``models.orders.events``), hourly."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def step(self) -> int:
        async with self.services.sessionmaker() as s, s.begin():
            removed = await order_events.prune(s)
        if removed:
            log.info("order events pruned", rows=removed)
        return removed


def is_transient(exc: BaseException) -> bool:
    """An expected I/O error, worth retrying: Redis or PostgreSQL unreachable, a connection
    lost or timed out (``models.availability``, the one test). Anything else is a bug or a
    broken invariant."""
    return is_unavailable(exc)


async def _retrying(what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` once; an expected I/O error is logged (the caller tries again later),
    anything else propagates and ends the process (the supervisor restarts it)."""
    try:
        await step()
    except Exception as exc:
        if not is_transient(exc):
            log.error("unexpected error; stopping", task=what, error=repr(exc))
            raise
        log.warning("retry failed", task=what, error=str(exc))


async def run_every(
    seconds: float, stop: asyncio.Event, step: Callable[[], Awaitable[object]]
) -> None:
    """``step()`` every ``seconds`` until ``stop``; see ``_retrying`` for errors."""
    what = getattr(step, "__qualname__", repr(step))
    while not stop.is_set():
        await _retrying(what, step)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


class ShardLeases:
    """One settlement consumer per shard, whichever processes (and machines) run: each shard's
    events are read by the holder of its lease (``bourse.lease``), so a shard's events are
    applied in order by one process. A second process for the same shards stands by and takes
    over once the holder stops refreshing (crashed, partitioned) for the lease's TTL. A holder
    whose lease key vanished (Redis restarted empty) takes it again; one that finds another
    holder stops (the supervisor restarts it as a standby). A batch it was applying meanwhile
    is harmless: the PostgreSQL cursor skips entries already settled."""

    def __init__(self, redis: Any, prefix: str, shards: Sequence[int], ttl_s: float) -> None:
        ttl_ms = int(ttl_s * 1000)
        self.refresh_s = ttl_s / 4
        self.leases = [Lease(redis, settlement_lease_key(prefix, k), ttl_ms) for k in shards]
        self.shards = list(shards)

    async def acquire(self, stop: asyncio.Event) -> bool:
        async def wait(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        def standing_by(holder: object) -> None:
            log.info("another settlement consumer holds the shard; standing by", holder=_s(holder))

        def redis_down(exc: Exception) -> None:
            log.warning("redis unavailable; retrying", error=repr(exc))

        for lease in self.leases:
            if not await lease.acquire(
                stop.is_set, poll=self.refresh_s, wait=wait, on_wait=standing_by,
                on_error=redis_down, retry_on=(RedisError, OSError),
            ):  # fmt: skip
                return False
        log.info("settlement holds its shards' leases", shards=self.shards)
        return True

    async def keep(self, stop: asyncio.Event) -> None:
        """Refresh every lease until ``stop``; LeaseLostError once another process holds one.
        While Redis does not answer it keeps trying (the consumer cannot read either), and
        takes the lease again when Redis is back and nobody else has."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_s)
            if stop.is_set():
                return
            try:
                for lease in self.leases:
                    try:
                        await lease.refresh()
                    except LeaseLostError:
                        # Gone without another holder (Redis restarted empty, a failover lost
                        # the key, it expired while Redis was away): taken again, as the shard
                        # does. Another holder: stop.
                        if not await lease.reclaim():
                            raise
                        log.warning("settlement lease lost and reclaimed", key=lease.key)
            except (RedisError, OSError) as exc:  # down, failing over (CLUSTERDOWN), loading
                log.warning("settlement lease refresh failed", error=repr(exc))

    async def release(self) -> None:
        for lease in self.leases:
            with contextlib.suppress(Exception):
                await lease.release()


async def run(
    settings: Settings,
    database_url: str,
    redis_url: str,
    stop: asyncio.Event,
    shards: Sequence[int] | None = None,
) -> None:
    """The settlement of ``shards`` (default: all) until ``stop``, once it holds their leases."""
    shards = list(range(settings.matching_shards)) if shards is None else shards
    async with open_services(settings, database_url, redis_url, pool_size=4) as services:
        leases = ShardLeases(
            services.redis, settings.redis_prefix, shards, settings.settlement_lease_seconds
        )
        if not await leases.acquire(stop):
            return
        try:
            await _settle(services, settings, shards, leases, stop)
        finally:
            await leases.release()
    log.info("settlement stopped")


async def _settle(
    services: Services,
    settings: Settings,
    shards: Sequence[int],
    leases: ShardLeases,
    stop: asyncio.Event,
) -> None:
    consumer = SettlementConsumer(services, shards, batch_size=settings.settlement_batch_size)
    relay = OutboxRelay(services)
    expiry = DayExpiry(services)
    trimmer = EventTrimmer(services, shards)
    log.info("settlement started", shards=list(shards))
    # A task group: an unexpected error in one task cancels the others and ends the
    # process (non-zero exit), so the supervisor restarts it with a clean slate.
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer.run(stop))
        tasks.create_task(run_every(settings.outbox_relay_interval_seconds, stop, relay.step))
        tasks.create_task(run_every(5.0, stop, expiry.step))
        tasks.create_task(run_every(5.0, stop, EngineSessions(services).step))
        tasks.create_task(run_every(60.0, stop, trimmer.step))
        tasks.create_task(run_every(3600.0, stop, OrderEventsPruner(services).step))
        tasks.create_task(run_every(5.0, stop, LagProbe(services, shards).step))
        tasks.create_task(leases.keep(stop))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.settlement")
    parser.add_argument(
        "--shards", default=None, help="comma-separated shard numbers (default all)"
    )
    args = parser.parse_args(argv)
    shards = [int(x) for x in args.shards.split(",")] if args.shards else None

    async def settle(
        settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
    ) -> None:
        await run(settings, database_url, redis_url, stop, shards)

    return service_main(settle)


if __name__ == "__main__":
    sys.exit(main())
