"""``CandleSink``: the feed's ticks and venue trades → OHLCV candles in PostgreSQL.

Plugged into the feed as a ``TickSink`` (``BOURSE_MARKETDATA_SINKS`` lists
``workers.marketdata.candles:candle_sink``). ``on_ticks`` / ``on_trades`` only buffer; a flush
(every ``flush_interval`` seconds from ``run``, when the buffer reaches ``max_buffer``, and on
``aclose``) merges the buffer into every interval's candles with ``CandleStore.record``.

Provider ticks are reference prices: they move open/high/low/close but carry no volume (even
when the provider reports a size: that is another venue's volume). Venue trades (``FILL``
events) carry volume; their sequence (the n of fill id ``"<asset>:<n>"``) makes replays exact
(see ``models.candles``). A flush that fails keeps its events for the next one (bounded by
``max_pending``; beyond it the oldest are dropped and logged: candles are derived data and a
backfill can repair them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog

from bourse.clock import utcnow
from models.candle_store import CandleStore
from models.candles import PricePoint
from models.services import Services, candle_retention
from workers.marketdata.providers import SinkContext, Tick, Trade

log = structlog.get_logger(__name__)


def fill_sequence(fill_id: str) -> int | None:
    """``"AAPL:42"`` → 42 (None when the id has no numeric suffix)."""
    _, sep, n = fill_id.rpartition(":")
    return int(n) if sep and n.isdigit() else None


def tick_point(t: Tick) -> PricePoint:
    return PricePoint(t.symbol, t.timestamp, t.price, None)


def trade_point(t: Trade) -> PricePoint:
    return PricePoint(t.asset_id, t.timestamp, t.price, t.quantity, fill_sequence(t.fill_id))


class CandleSink:
    def __init__(
        self,
        store: CandleStore,
        *,
        flush_interval: float = 1.0,
        max_buffer: int = 5_000,
        max_pending: int = 200_000,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.max_pending = max_pending
        self._buffer: list[PricePoint] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic flush (done by the first delivery when not called)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="candle-sink")

    async def on_ticks(self, ticks: Sequence[Tick]) -> None:
        self.start()
        self._buffer.extend(tick_point(t) for t in ticks)
        await self._maybe_flush()

    async def on_trades(self, trades: Sequence[Trade]) -> None:
        # Trades are acknowledged upstream once this returns: write them now, so an
        # acknowledged trade is in a candle (at least once; the sequence makes it exactly once).
        self.start()
        self._buffer.extend(trade_point(t) for t in trades)
        await self.flush(raise_errors=True)

    async def _maybe_flush(self) -> None:
        if len(self._buffer) >= self.max_buffer:
            await self.flush()

    async def flush(self, *, raise_errors: bool = False) -> int:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                return await self.store.record(batch)
            except Exception:
                # Keep the events for the next flush (the merge is idempotent).
                self._buffer[:0] = batch
                if len(self._buffer) > self.max_pending:
                    dropped = len(self._buffer) - self.max_pending
                    del self._buffer[:dropped]
                    log.error("candles.dropped", events=dropped)
                if raise_errors:
                    raise
                log.exception("candles.flush_failed", events=len(batch))
                return 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


def candle_sink(context: SinkContext) -> CandleSink:
    """The sink factory named in ``BOURSE_MARKETDATA_SINKS``."""
    return CandleSink(
        CandleStore(context.sessionmaker, candle_retention(context.settings)),
        flush_interval=context.settings.candles_flush_seconds,
    )


async def maintain_candles(ctx: dict[str, Any]) -> dict[str, int]:
    """arq cron job (hourly): create the coming partitions, apply retention."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return {}
    now = utcnow()
    await services.candles.ensure_ahead(now)
    report = await services.candles.apply_retention(now)
    if report.dropped_partitions or report.deleted_rows:
        log.info(
            "candles.retention",
            dropped=report.dropped_partitions,
            deleted_rows=report.deleted_rows,
        )
    return {"dropped": len(report.dropped_partitions), "deleted": report.deleted_rows}
