"""The price-alert evaluator: ``python -m workers.alerts`` (a child of ``bourse up``).

It consumes the same price events as the ``quotes`` subscription: the market-data feed's
``PUBLISH <P>quotes:<symbol>`` (``models.quotes.write_quotes``), through one PSUBSCRIBE. Alerts
live in memory in ``AlertIndex`` (per asset, sorted by level), rebuilt from PostgreSQL on
start and on every reconnect, and kept current by the ``<P>alerts:changes`` channel (created,
cancelled: published by ``PriceAlerts`` after the commit). A tick costs O(log n + fired).

Exactly once per arming, whatever runs: what a tick fires is claimed in PostgreSQL by ONE
conditional UPDATE (``PriceAlerts.claim``) that only an ACTIVE, armed alert passes, with its
notification in the same transaction; so two evaluators racing, or one restarted after a
crash between a claim and its announcement, fire an alert once. The claim's notifications are
announced (published live, delivery planned) after the commit; a crash before that leaves the
inbox row to the delivery sweeper.

Re-arming alerts wait in a heap until their cool-down ends (``armed_at``, from the injected
clock), then are indexed again and fire at once if the last price already satisfies them.
Percent alerts' levels come from each asset's previous close, re-read every
``alerts_base_refresh_seconds``; a changed close re-levels that asset's percent alerts.

Scales by asset: ``--partition K --partitions N`` evaluates the assets with ``shard_for(symbol,
N) == K`` (one process per partition); without, every asset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from bourse import metrics, redis_client
from bourse.clock import utcnow
from bourse.keys import alert_changes_channel, quotes_pattern, shard_for
from bourse.process import service_main
from bourse.settings import Settings
from models.notifications import Notifier, PriceAlerts
from models.notifications.alert_index import AlertIndex
from models.notifications.alerts import ArmedAlert, is_above, level_of
from models.notifications.tables import AlertCondition
from models.services import open_services

log = structlog.get_logger("bourse.alerts")
MAX_DRAIN = 2000  # ticks evaluated before their firings are claimed (one claim for all)


class Evaluator:
    def __init__(
        self,
        alerts: PriceAlerts,
        notifier: Notifier,
        *,
        clock: Callable[[], datetime] = utcnow,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        self._alerts = alerts
        self._notifier = notifier
        self.clock = clock
        self._accept = accept or (lambda _symbol: True)
        self.index = AlertIndex()
        self._known: dict[str, ArmedAlert] = {}  # every ACTIVE alert held, indexed or waiting
        self._waiting: list[tuple[datetime, str]] = []  # (armed_at, id): cooling down
        self._last: dict[str, Decimal] = {}
        self._bases: dict[str, Decimal] = {}
        self.fired = 0
        self.ready = asyncio.Event()  # set while subscribed with the index built
        self._announcing: set[asyncio.Task[None]] = set()

    # ---- the index ----

    async def rebuild(self) -> None:
        await self.rebuild_into(AlertIndex())

    async def rebuild_into(self, index: AlertIndex) -> None:
        """Index every ACTIVE alert from PostgreSQL into ``index`` (a fresh one on start and
        reconnect; the benchmark passes one pre-filled)."""
        self.index = index
        self._known.clear()
        self._waiting.clear()
        self._bases = await self._alerts.bases()
        for alert in await self._alerts.armed(self._accept):
            self._hold(alert)

    def _hold(self, alert: ArmedAlert) -> None:
        key = str(alert.id)
        self._known[key] = alert
        if alert.armed_at > self.clock():
            self.index.remove(key)
            heapq.heappush(self._waiting, (alert.armed_at, key))
            return
        base = self._bases.get(alert.asset_id, Decimal(0))
        level = level_of(alert.condition, alert.threshold, base)
        if level <= 0:
            return  # a percent alert of an asset without a base yet: re-levelled later
        self.index.add(key, alert.asset_id, above=is_above(alert.condition), level=level)

    def _drop(self, key: str) -> None:
        self._known.pop(key, None)
        self.index.remove(key)  # a waiting entry is skipped when it comes due

    async def refresh_bases(self) -> None:
        bases = await self._alerts.bases()
        changed = {a for a, b in bases.items() if self._bases.get(a) != b}
        self._bases = bases
        if not changed:
            return
        for alert in list(self._known.values()):
            percent = alert.condition in (AlertCondition.PERCENT_UP, AlertCondition.PERCENT_DOWN)
            if percent and alert.asset_id in changed and str(alert.id) in self.index:
                self._hold(alert)

    # ---- events ----

    async def on_change(self, raw: bytes | str) -> None:
        doc = json.loads(raw)
        key = str(doc["id"])
        if doc["op"] == "remove":
            self._drop(key)
            return
        alert = ArmedAlert(
            uuid.UUID(key),
            doc["asset_id"],
            AlertCondition(doc["condition"]),
            Decimal(doc["threshold"]),
            datetime.fromisoformat(doc["armed_at"]),
        )
        if not self._accept(alert.asset_id):
            return
        if alert.asset_id not in self._bases:
            self._bases = await self._alerts.bases()
        self._hold(alert)
        last = self._last.get(alert.asset_id)
        if last is not None and self.index.satisfied(alert.asset_id, last, key):
            await self.on_tick(alert.asset_id, last)  # passed between creation and now

    def crossed(self, asset_id: str, price: Decimal) -> list[tuple[uuid.UUID, Decimal]]:
        """The alerts a tick fires, out of the index (claimed by the caller, in a batch)."""
        self._last[asset_id] = price
        return [(uuid.UUID(k), price) for k in self.index.crossed(asset_id, price)]

    async def on_tick(self, asset_id: str, price: Decimal) -> int:
        metrics.alert_ticks.inc()
        pairs = self.crossed(asset_id, price)
        return await self._fire(pairs) if pairs else 0

    async def rearm_due(self) -> int:
        now = self.clock()
        due: list[ArmedAlert] = []
        while self._waiting and self._waiting[0][0] <= now:
            at, key = heapq.heappop(self._waiting)
            alert = self._known.get(key)
            if alert is None or alert.armed_at != at:
                continue  # cancelled, or re-armed again since
            due.append(alert)
        fired = 0
        touched: set[str] = set()
        for alert in due:
            self._hold(alert)
            touched.add(alert.asset_id)
        for asset_id in touched:
            last = self._last.get(asset_id)
            if last is not None:
                fired += await self.on_tick(asset_id, last)
        return fired

    async def _fire(self, pairs: list[tuple[uuid.UUID, Decimal]]) -> int:
        won = await self._alerts.claim(pairs, self.clock())
        if won:  # after the commit; in the background, so the next ticks do not wait for it
            task = asyncio.create_task(self._notifier.announce([f.notification for f in won]))
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)
        winners = {f.alert.id for f in won}
        for f in won:
            key = str(f.alert.id)
            if f.rearm_at is None:
                self._known.pop(key, None)
            else:
                self._hold(
                    ArmedAlert(
                        f.alert.id,
                        f.alert.asset_id,
                        f.alert.condition,
                        f.alert.threshold,
                        f.rearm_at,
                    )
                )
        lost = [i for i, _ in pairs if i not in winners]
        if lost:  # another evaluator won, or it was cancelled: hold what is still active
            for key in (str(i) for i in lost):
                self._known.pop(key, None)
            for alert in await self._alerts.armed_by_ids(lost):
                self._hold(alert)
        self.fired += len(won)
        metrics.alerts_fired.inc(len(won))
        return len(won)

    # ---- the loop ----

    async def run(
        self, redis: Redis, prefix: str, stop: asyncio.Event, base_refresh: float
    ) -> None:
        while not stop.is_set():
            try:
                await self._session(redis, prefix, stop, base_refresh)
            except (RedisError, DBAPIError, OSError) as exc:
                log.warning("alert evaluator reconnecting", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)

    async def _session(
        self, redis: Redis, prefix: str, stop: asyncio.Event, base_refresh: float
    ) -> None:
        pubsub = redis_client.pubsub(redis)
        try:
            changes = alert_changes_channel(prefix)
            await pubsub.subscribe(changes)
            await pubsub.psubscribe(quotes_pattern(prefix))
            await self.rebuild()  # after subscribing: nothing created meanwhile is missed
            self.ready.set()
            log.info("alert evaluator ready", alerts=len(self.index), waiting=len(self._waiting))
            refreshed = time.monotonic()
            while not stop.is_set():
                # Every tick already received is evaluated (in order, in memory) before one
                # claim covers all it fired: under load a claim serves many ticks.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
                pending: list[tuple[uuid.UUID, Decimal]] = []
                drained = 0
                while message is not None:
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if channel == changes:
                        if pending:
                            await self._fire(pending)
                            pending = []
                        await self.on_change(message["data"])
                    else:
                        symbol = channel[len(prefix) + len("quotes:") :]
                        if self._accept(symbol):
                            doc = json.loads(message["data"])
                            pending += self.crossed(symbol, Decimal(doc["price"]))
                    drained += 1
                    if drained >= MAX_DRAIN:
                        break
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
                if pending:
                    await self._fire(pending)
                await self.rearm_due()
                if time.monotonic() - refreshed > base_refresh:
                    refreshed = time.monotonic()
                    await self.refresh_bases()
        finally:
            self.ready.clear()
            if self._announcing:
                await asyncio.gather(*self._announcing, return_exceptions=True)
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def partition(k: int | None, n: int | None) -> Callable[[str], bool] | None:
    if k is None or n is None:
        return None
    return lambda symbol: shard_for(symbol, n) == k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.alerts")
    parser.add_argument("--partition", type=int, default=None)
    parser.add_argument("--partitions", type=int, default=None)
    args = parser.parse_args(argv)

    async def run(
        settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
    ) -> None:
        async with open_services(settings, database_url, redis_url, pool_size=3) as services:
            evaluator = Evaluator(
                services.alerts,
                services.notifier,
                accept=partition(args.partition, args.partitions),
            )
            await evaluator.run(
                services.redis, settings.redis_prefix, stop, settings.alerts_base_refresh_seconds
            )

    return service_main(run)


if __name__ == "__main__":
    sys.exit(main())
