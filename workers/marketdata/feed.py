"""The market-data feed: provider ticks and venue trades in; quotes, reference prices out.

One feed runs per deployment (per Redis key prefix): it holds the lease ``<P>marketdata:lease``
(SET NX PX, refreshed every second); a second one waits as a hot standby and takes over within
``LEASE_MS`` of the first one dying. ``bourse up`` runs it as a supervised child process
(``python -m workers.marketdata``).

Inputs, each an independent task:

- **ticks** from the ``PriceProvider``: the asset's reference price;
- **trades**: the ``FILL`` events of every matching shard, read through the consumer group
  ``marketdata`` (consumer ``feed``) on ``<P>matching:{K}:events``; fixed-point prices and
  quantities are decoded with the asset's scales;
- **books**: ``<P>matching:depth:*`` (pattern subscription) for the best bid and ask, after a
  fresh read of every book document on each (re)connect;
- **assets**: the ``assets`` table, re-read every ``marketdata_assets_refresh_seconds`` to pick
  up new listings (the provider is restarted with the new universe).

Outputs (quotes and reference prices from a flush loop every ``marketdata_publish_interval_ms``
that touches only Redis; sinks and the table from loops of their own, so neither a slow sink nor
a slow database can delay a quote):

- the quote of every asset that changed: ``price`` is the venue's last trade when it is younger
  than ``marketdata_trade_fresh_seconds``, else the provider's reference price; ``bid`` / ``ask``
  the book's best prices (null when that side is empty). Written to ``<P>quote:<symbol>`` and
  published on ``<P>quotes:<symbol>`` in one MULTI/EXEC (``models.quotes.write_quotes``);
- ``REFERENCE_PRICE`` commands to the shards, at most one per asset per
  ``marketdata_reference_interval_ms`` (the latest price wins);
- every tick and trade to the ``TickSink`` hooks (candles);
- every ``marketdata_persist_interval_seconds``, the changed reference prices to the ``assets``
  table (the durable fallback the API uses when Redis has no quote).

Redis and database errors are logged and retried; only a lost lease stops the feed (another
feed owns the prefix now).

One class (about 630 lines) on purpose: its loops (ticks, trades, books, flush, assets) share
the per-asset state they race on, and all of them run in one task group that the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse import metrics, redis_client
from bourse.clock import utcnow
from bourse.keys import depth_channel, events_key
from bourse.keys import marketdata_lease_key as lease_key
from bourse.lease import Lease, LeaseLostError
from bourse.settings import Settings
from matching.codec import AssetScales, asset_scales, from_fixed
from matching.wire import FillEvent, RejectedEvent, SplitAppliedEvent, read_event
from models.assets import Asset, Assets
from models.corporate_actions import CorporateAction, CorporateActionKind, CorporateActionStatus
from models.exchange import Exchange
from models.quotes import QuoteData, display_price, read_quotes, split_adjusted, write_quotes
from workers.marketdata.providers import (
    DEFAULT_VOLATILITY,
    Instrument,
    PriceProvider,
    Tick,
    TickSink,
    Trade,
)

log = structlog.get_logger("workers.marketdata.feed")

GROUP = "marketdata"
CONSUMER = "feed"
LEASE_MS = 5_000
LEASE_REFRESH_S = 1.0
TICK_BUFFER = 50_000  # ticks waiting for the sinks; beyond it the oldest are dropped (counted)
SINK_ATTEMPTS = 3


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _decimal_or_none(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclass
class AssetState:
    asset: Asset
    scales: AssetScales
    reference: Decimal | None = None
    reference_at: datetime | None = None
    last_trade: Decimal | None = None
    last_trade_at: datetime | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    changed_at: datetime = field(default_factory=utcnow)
    dirty: bool = False  # the quote must be written / published
    version: int = 0  # counts changes: a flush clears `dirty` only if nothing changed meanwhile
    reference_pending: bool = False  # a REFERENCE_PRICE must be sent
    reference_sent: float = float("-inf")  # monotonic time of the last one
    persist_pending: bool = False  # the assets table is behind

    def touch(self, at: datetime) -> None:
        self.changed_at = max(self.changed_at, at)
        self.dirty = True
        self.version += 1

    def quote(self, now: datetime, fresh: timedelta) -> QuoteData:
        recent_trade = (
            self.last_trade is not None
            and self.last_trade_at is not None
            and now - self.last_trade_at <= fresh
        )
        if recent_trade:
            assert self.last_trade is not None
            price = self.last_trade
        else:
            price = self.reference or self.last_trade or self.asset.reference_price
        return QuoteData(
            asset_id=self.asset.symbol,
            price=display_price(price, self.asset.tick_size),
            bid=self.bid,
            ask=self.ask,
            timestamp=self.changed_at,
            last_trade=self.last_trade,
            reference=self.reference,
        )


@dataclass
class FeedStats:
    ticks: int = 0
    trades: int = 0
    quotes_published: int = 0
    reference_commands: int = 0
    ticks_dropped: int = 0
    errors: int = 0


CANCEL_GRACE_S = 2.0  # a loop that has not ended this long after its cancel is cancelled again


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the feed's loops and wait for them, bounded: a cancel a library swallowed (a
    loop seen "cancelling" for ever after Redis was unreachable, the feed never starting again)
    is repeated, and after three tries the loop is left behind, logged, rather than the feed
    waiting on it for ever."""
    pending = set(tasks)
    for _ in range(3):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
        if not pending:
            return
    log.error("feed loops did not end when cancelled", tasks=sorted(t.get_name() for t in pending))


def _unless_cancelled() -> None:
    """Re-raise a cancellation that reached a loop as an error: redis-py (and ``asyncio.timeout``
    on 3.11, when a cancel races a socket timeout) can report the task's cancellation as a
    ``TimeoutError`` / ``ConnectionError``. A loop that logged it and went on would never end,
    and a feed whose lease was lost waits for every loop to end before it starts again: it
    stopped quoting for good after Redis was unreachable for a few seconds."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class MarketDataFeed:
    def __init__(
        self,
        *,
        settings: Settings,
        redis: Redis,
        sessionmaker: async_sessionmaker[AsyncSession],
        provider: PriceProvider,
        sinks: Sequence[TickSink] = (),
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = settings.redis_prefix
        self.shards = settings.matching_shards
        self.provider = provider
        self.sinks = list(sinks)
        self.exchange = Exchange(redis, self.prefix, self.shards)
        self.assets = Assets(sessionmaker, self.exchange.configure)
        self._sm = sessionmaker
        self._splits_after = utcnow()  # stock splits applied since are rescaled in the state
        self.states: dict[str, AssetState] = {}
        self.stats = FeedStats()
        self.fresh = timedelta(seconds=settings.marketdata_trade_fresh_seconds)
        self._ticks: deque[Tick] = deque(maxlen=TICK_BUFFER)
        self._universe_changed = asyncio.Event()
        # A shard applied a stock split (SPLIT_APPLIED on its events stream): look at the
        # assets now, not at the next refresh, so no pre-split price reaches the new book.
        self._split_applied = asyncio.Event()
        self._lease = Lease(redis, lease_key(self.prefix), LEASE_MS)
        self._reconfigured: dict[str, float] = {}
        self.ready = asyncio.Event()  # set once the feed holds the lease and knows its assets

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; raises ``LeaseLostError`` if another feed took over."""
        if not await self._acquire_lease(stop):
            return
        try:
            await self._load_assets(initial=True)
            self.ready.set()
            tasks = [
                asyncio.create_task(self._lease_loop(), name="lease"),
                asyncio.create_task(self._provider_loop(), name="provider"),
                asyncio.create_task(self._trades_loop(), name="trades"),
                asyncio.create_task(self._books_loop(), name="books"),
                asyncio.create_task(self._flush_loop(), name="flush"),
                asyncio.create_task(self._sinks_loop(), name="sinks"),
                asyncio.create_task(self._persist_loop(), name="persist"),
                asyncio.create_task(self._assets_loop(), name="assets"),
            ]
            stopper = asyncio.create_task(stop.wait(), name="stop")
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            await _cancel_all([*tasks, stopper])
            for task in done:
                error = None if task is stopper or task.cancelled() else task.exception()
                if error is not None:
                    raise error
            await self._final_flush()
        finally:
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    await sink.aclose()
            with contextlib.suppress(RedisError, OSError):
                await self._lease.release()

    async def _acquire_lease(self, stop: asyncio.Event) -> bool:
        async def wait(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        def standing_by(_holder: object) -> None:
            log.info("another market-data feed runs for this prefix; standing by")

        def redis_down(exc: Exception) -> None:
            log.warning("redis unavailable; retrying", error=repr(exc))

        held = await self._lease.acquire(
            stop.is_set,
            poll=LEASE_REFRESH_S,
            wait=wait,
            on_wait=standing_by,
            on_error=redis_down,
            retry_on=(RedisError, OSError),
        )
        if held:
            log.info("market-data feed holds the lease", prefix=self.prefix)
        return held

    async def _lease_loop(self) -> None:
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_REFRESH_S)
            try:
                await self._lease.refresh()
            except (RedisError, OSError) as exc:
                _unless_cancelled()
                log.warning("lease refresh failed", error=repr(exc))
                if time.monotonic() - last_ok > LEASE_MS / 1000:
                    raise LeaseLostError("could not refresh the lease in time") from exc
                continue
            last_ok = time.monotonic()

    # ------------------------------------------------------------------ assets

    async def _load_assets(self, *, initial: bool = False) -> None:
        assets = await self.assets.all()
        added = [a for a in assets if a.symbol not in self.states]
        removed = set(self.states) - {a.symbol for a in assets}
        for a in assets:
            state = self.states.get(a.symbol)
            if state is None:
                self.states[a.symbol] = AssetState(
                    asset=a,
                    scales=asset_scales(a.tick_size, a.quantity_increment),
                    reference=display_price(a.reference_price, a.tick_size),
                    changed_at=a.updated_at or utcnow(),
                )
            else:
                state.asset = a
                state.scales = asset_scales(a.tick_size, a.quantity_increment)
        split = False if initial else await self._apply_splits()
        for symbol in removed:
            del self.states[symbol]
        if added:
            await self._restore([a.symbol for a in added])
            # ADD_ASSET is idempotent: make sure every shard knows the books we price.
            await self.exchange.configure(added)
        if added or removed or split:
            if not initial:
                log.info("asset universe changed", added=[a.symbol for a in added])
            self._universe_changed.set()  # the provider restarts from the states' prices

    async def _apply_splits(self) -> bool:
        """Stock splits applied since the last look (``models/corporate_actions.py``): the
        state's prices (reference, last trade, bid, ask) in post-split prices, by the same rule
        as the asset's reference price (``models.quotes.split_adjusted``), so the feed neither
        publishes nor sends the engine a pre-split price again. Checked with the assets (every
        ``marketdata_assets_refresh_seconds``) and at once when a shard's SPLIT_APPLIED comes
        in on the events stream the feed already reads for trades: a price the feed sends
        between the split's commit and then is pre-split (milliseconds while the shards keep
        up; record splits with the market closed all the same)."""
        async with self._sm() as s:
            rows = (
                (
                    await s.execute(
                        select(CorporateAction)
                        .where(
                            CorporateAction.kind == CorporateActionKind.STOCK_SPLIT,
                            CorporateAction.status == CorporateActionStatus.APPLIED,
                            CorporateAction.applied_at > self._splits_after,
                        )
                        .order_by(CorporateAction.applied_at)
                    )
                )
                .scalars()
                .all()
            )
        found = False
        for action in rows:
            assert action.applied_at is not None
            self._splits_after = max(self._splits_after, action.applied_at)
            state = self.states.get(action.asset_id)
            if state is None or action.numerator is None or action.denominator is None:
                continue
            n, d, tick = action.numerator, action.denominator, state.asset.tick_size
            for name in ("reference", "last_trade", "bid", "ask"):
                value = getattr(state, name)
                if value is not None:
                    setattr(state, name, display_price(split_adjusted(value, n, d, tick), tick))
            state.touch(utcnow())
            state.reference_pending = state.persist_pending = state.reference is not None
            found = True
        return found

    async def _restore(self, symbols: Sequence[str]) -> None:
        """Continue from the quotes in Redis (fresher than the table's reference prices)."""
        quotes = await read_quotes(self.redis, self.prefix, symbols)
        for symbol, q in quotes.items():
            state = self.states[symbol]
            if q.reference is not None:
                state.reference = q.reference
            if q.last_trade is not None:
                state.last_trade = q.last_trade
            state.changed_at = q.timestamp

    async def _assets_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._split_applied.wait(), self.settings.marketdata_assets_refresh_seconds
                )
            self._split_applied.clear()
            try:
                await self._load_assets()
            except (SQLAlchemyError, OSError, RedisError) as exc:
                _unless_cancelled()
                self.stats.errors += 1
                log.warning("could not refresh assets", error=repr(exc))

    def instruments(self) -> list[Instrument]:
        return [
            Instrument(
                symbol=s.asset.symbol,
                price=s.reference or s.asset.reference_price,
                tick_size=s.asset.tick_size.normalize(),
                market_calendar=s.asset.market_calendar,
                volatility=(
                    float(s.asset.volatility) if s.asset.volatility else DEFAULT_VOLATILITY
                ),
            )
            for s in sorted(self.states.values(), key=lambda s: s.asset.symbol)
        ]

    # ------------------------------------------------------------------ ticks

    async def _provider_loop(self) -> None:
        while True:
            self._universe_changed.clear()
            instruments = self.instruments()
            consume = asyncio.create_task(self._consume(instruments), name="provider-ticks")
            changed = asyncio.create_task(self._universe_changed.wait())
            try:
                await asyncio.wait({consume, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                if not consume.done():
                    consume.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await consume
            if consume.cancelled():
                continue
            error = consume.exception()
            if error is not None:
                self.stats.errors += 1
                log.error("price provider failed; restarting it", error=repr(error))
                await asyncio.sleep(1.0)
                continue
            log.info("price provider has no more ticks")
            await self._universe_changed.wait()

    async def _consume(self, instruments: Sequence[Instrument]) -> None:
        if not instruments:
            return
        stream = self.provider.ticks(instruments)
        try:
            async for tick in stream:
                self.on_tick(tick)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def on_tick(self, tick: Tick) -> None:
        state = self.states.get(tick.symbol)
        if state is None:
            return
        self.stats.ticks += 1
        if state.reference_at is None or tick.timestamp >= state.reference_at:
            state.reference = tick.price
            state.reference_at = tick.timestamp
            state.reference_pending = True
            state.persist_pending = True
            state.touch(tick.timestamp)
        if len(self._ticks) == self._ticks.maxlen:
            self.stats.ticks_dropped += 1
        self._ticks.append(tick)

    # ------------------------------------------------------------------ trades

    def _event_keys(self) -> list[str]:
        return [events_key(self.prefix, k) for k in range(self.shards)]

    async def _ensure_groups(self) -> None:
        for key in self._event_keys():
            try:
                # From the stream's start: the first feed sees every trade still in the stream
                # (the candle sinks want them all); later starts resume where the group is.
                await self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _trades_loop(self) -> None:
        backoff = 0.1
        backlog = True  # first our own pending entries (delivered before a crash), then new
        while True:
            try:
                await self._ensure_groups()
                while True:
                    cursor = "0" if backlog else ">"
                    reply = await redis_client.xreadgroup(
                        self.redis,
                        GROUP,
                        CONSUMER,
                        dict.fromkeys(self._event_keys(), cursor),
                        count=1000,
                        block=None if backlog else 1000,
                    )
                    entries = [(_text(k), msgs) for k, msgs in reply or []]
                    if backlog and not any(msgs for _, msgs in entries):
                        backlog = False
                        continue
                    await self._on_events(entries)
                    backoff = 0.1
            except (RedisError, OSError) as exc:
                _unless_cancelled()
                self.stats.errors += 1
                log.warning("reading trades failed; retrying", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)
                backlog = True

    async def _on_events(self, entries: list[tuple[str, list[Any]]]) -> None:
        trades: list[Trade] = []
        acks: dict[str, list[str]] = {}
        for key, messages in entries:
            for entry_id, fields in messages:
                acks.setdefault(key, []).append(_text(entry_id))
                raw = fields.get(b"event", fields.get("event")) if fields else None
                if raw is None:
                    continue
                try:
                    ev = read_event(raw)
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(ev, FillEvent):
                    trade = self._trade(ev)
                    if trade is not None:
                        trades.append(trade)
                elif isinstance(ev, SplitAppliedEvent) and ev.asset_id in self.states:
                    self._split_applied.set()
                elif (
                    isinstance(ev, RejectedEvent)
                    and ev.reason == "UNKNOWN_ASSET"
                    and ev.order_id is None
                    and ev.asset_id is not None
                ):
                    await self._reconfigure(ev.asset_id)
        for trade in trades:
            state = self.states[trade.asset_id]
            if state.last_trade_at is None or trade.timestamp >= state.last_trade_at:
                state.last_trade = trade.price
                state.last_trade_at = trade.timestamp
                state.touch(trade.timestamp)
        self.stats.trades += len(trades)
        if trades:
            await self._to_sinks("on_trades", trades)
        if acks:
            pipe = self.redis.pipeline(transaction=False)
            for key, ids in acks.items():
                pipe.xack(key, GROUP, *ids)
            await pipe.execute()

    def _trade(self, ev: FillEvent) -> Trade | None:
        state = self.states.get(ev.asset_id)
        if state is None:
            return None
        ps, qs = state.scales.price_scale, state.scales.qty_scale
        return Trade(
            asset_id=state.asset.symbol,
            fill_id=ev.fill_id,
            timestamp=datetime.fromtimestamp(ev.ts / 1e9, UTC),
            price=from_fixed(ev.price, ps),
            quantity=from_fixed(ev.quantity, qs),
            taker_side=ev.taker_side,
        )

    async def _reconfigure(self, symbol: str) -> None:
        """A shard does not know an asset we price (its streams were wiped?): tell it again."""
        state = self.states.get(symbol)
        now = time.monotonic()
        if state is None or now - self._reconfigured.get(symbol, float("-inf")) < 10:
            return
        self._reconfigured[symbol] = now
        log.warning("matching shard lacks an asset; configuring it", asset=symbol)
        await self.exchange.configure([state.asset])

    # ------------------------------------------------------------------ books

    async def _books_loop(self) -> None:
        backoff = 0.1
        pattern = _glob_escape(depth_channel(self.prefix, "")) + "*"
        while True:
            pubsub = redis_client.pubsub(self.redis, ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(pattern)
                await self._read_books()  # after subscribing: no change can fall in between
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is not None and msg.get("type") == "pmessage":
                        self._on_book(msg["data"])
            except (RedisError, OSError) as exc:
                _unless_cancelled()
                self.stats.errors += 1
                log.warning("book updates interrupted; retrying", error=repr(exc))
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_books(self) -> None:
        for doc in (await self.exchange.books(list(self.states))).values():
            self._apply_book(doc)

    def _on_book(self, raw: str | bytes) -> None:
        try:
            doc = json.loads(raw)
        except ValueError:
            return
        if isinstance(doc, dict):
            self._apply_book(doc)

    def _apply_book(self, doc: dict[str, Any]) -> None:
        state = self.states.get(str(doc.get("asset_id")))
        if state is None:
            return
        try:
            bid = _decimal_or_none(doc.get("best_bid"))
            ask = _decimal_or_none(doc.get("best_ask"))
        except ArithmeticError:
            return
        if (bid, ask) != (state.bid, state.ask):
            state.bid, state.ask = bid, ask
            ts = doc.get("ts")
            at = datetime.fromtimestamp(ts / 1e9, UTC) if isinstance(ts, int) else None
            state.touch(at or utcnow())

    # ------------------------------------------------------------------ outputs

    async def _flush_loop(self) -> None:
        """Quotes and reference prices (Redis only: nothing slower may hold them up)."""
        interval = self.settings.marketdata_publish_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self._flush()
            except (RedisError, OSError) as exc:
                _unless_cancelled()
                self.stats.errors += 1
                log.warning("publishing quotes failed; retrying", error=repr(exc))
                await asyncio.sleep(min(1.0, interval * 10))

    async def _sinks_loop(self) -> None:
        """Ticks to the sinks, in batches (a slow sink delays only itself and candles)."""
        interval = max(self.settings.marketdata_publish_interval_ms / 1000, 0.05)
        while True:
            await asyncio.sleep(interval)
            await self._drain_ticks()

    async def _persist_loop(self) -> None:
        """Reference prices to the assets table (a slow database never delays quotes)."""
        while True:
            await asyncio.sleep(self.settings.marketdata_persist_interval_seconds)
            try:
                await self._persist()
            except (SQLAlchemyError, OSError) as exc:
                _unless_cancelled()
                self.stats.errors += 1
                log.warning("storing reference prices failed; retrying", error=repr(exc))

    async def _flush(self) -> None:
        now = utcnow()
        dirty = [(s, s.version) for s in self.states.values() if s.dirty]
        if dirty:
            await write_quotes(
                self.redis, self.prefix, [s.quote(now, self.fresh) for s, _ in dirty], publish=True
            )
            for s, version in dirty:
                if s.version == version:  # else a tick came in during the write: next flush
                    s.dirty = False
            self.stats.quotes_published += len(dirty)
            metrics.feed_ticks.inc(len(dirty))
        await self._send_references()

    async def _drain_ticks(self) -> None:
        if self._ticks:
            batch = list(self._ticks)
            self._ticks.clear()
            await self._to_sinks("on_ticks", batch)

    async def _final_flush(self) -> None:
        """At shutdown: the last quotes and reference prices, the sinks' ticks, the table."""
        with contextlib.suppress(RedisError, OSError):
            await self._flush()
            await self._send_references(final=True)
        await self._drain_ticks()
        with contextlib.suppress(SQLAlchemyError, OSError):
            await self._persist()

    async def _send_references(self, *, final: bool = False) -> None:
        now = time.monotonic()
        gap = self.settings.marketdata_reference_interval_ms / 1000
        due = [
            s
            for s in self.states.values()
            if s.reference_pending
            and s.reference is not None
            and (final or now - s.reference_sent >= gap)
        ]
        if not due:
            return
        sent = [(s, s.reference) for s in due]
        await self.exchange.reference_prices([(s.asset, ref) for s, ref in sent if ref])
        for s, ref in sent:
            # A tick that arrived while this was being sent stays pending: the latest price
            # must always reach the shard.
            if s.reference == ref:
                s.reference_pending = False
            s.reference_sent = now
        self.stats.reference_commands += len(due)

    async def _persist(self) -> None:
        changed = {
            s.asset.symbol: s.reference
            for s in self.states.values()
            if s.persist_pending and s.reference is not None
        }
        if not changed:
            return
        await self.assets.set_reference_prices(changed)
        for symbol, written in changed.items():
            # Not if the state moved meanwhile (a split rescaled it while this write waited
            # for the split's lock of the row): the next persist writes the new price.
            state = self.states.get(symbol)
            if state is not None and state.reference == written:
                state.persist_pending = False

    async def _to_sinks(self, method: str, items: Sequence[Any]) -> None:
        for sink in self.sinks:
            for attempt in range(1, SINK_ATTEMPTS + 1):
                try:
                    await getattr(sink, method)(items)
                    break
                except Exception as exc:  # a sink's failure must not stop the quotes
                    self.stats.errors += 1
                    log.exception(
                        "market-data sink failed", sink=type(sink).__name__, attempt=attempt
                    )
                    if attempt == SINK_ATTEMPTS:
                        log.error("giving up on this batch", sink=type(sink).__name__, error=exc)
                    else:
                        await asyncio.sleep(0.1 * attempt)
