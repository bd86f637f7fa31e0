"""The order outbox: matching commands written in the transaction that made them necessary,
and the one way they are sent.

A row holds the command's canonical wire text (``matching.wire.encode_command``), made once
when the row is written; whoever sends it (the request right after its commit, or the relay
for anything a crash left unsent) appends that text unchanged to the asset's shard input
stream. The shard ignores a repeated order id, so a command sent twice is harmless.

- ``Outbox.row`` builds the row inside the caller's transaction.
- ``Outbox.send_now`` (the API, after commit) sends and records the row as sent in batches
  (one UPDATE every few ms for all requests), off the request's path. A mark lost to a crash
  only means the relay sends the command again. The sends of concurrent requests share one
  pipeline (``bourse.coalesce.Coalesced``): rows committed while a pipeline is on its way go
  in the next one, in the order they came; each request still waits for its own XADD's answer
  (or error).
- ``Outbox.relay`` (``workers/settlement.py`` runs it every ``outbox_relay_interval_seconds``)
  sends rows nobody sent: older than a grace period (a crash between commit and send), or
  queued for a market's open that has come; with SKIP LOCKED so several relays can run.

The table and its send logic live together here; the worker only schedules the relay.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import BigInteger, Identity, Index, String, Text, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse import tracing
from bourse.clock import utcnow
from bourse.coalesce import Coalesced
from matching.wire import Command, encode_command
from models.base import Base
from models.exchange import Exchange

log = structlog.get_logger("bourse.orders")
RELAY_GRACE = timedelta(seconds=2)
MARK_SENT_BATCH_SECONDS = 0.02


class OutboxEntry(Base):
    """A command for a matching shard, written in the transaction that made it necessary."""

    __tablename__ = "order_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID]
    asset_id: Mapped[str] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(Text)  # canonical wire JSON, sent as it is
    # The W3C traceparent of the request that wrote it (bourse.tracing), sent beside it.
    trace_parent: Mapped[str | None] = mapped_column(String(64))
    available_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_order_outbox_unsent", "available_at", postgresql_where=text("sent_at IS NULL")),
        Index("ix_order_outbox_order", "order_id"),
    )


class Outbox:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], exchange: Exchange) -> None:
        self._sm = sessionmaker
        self._exchange = exchange
        self._sent_ids: list[int] = []
        self._flusher: asyncio.Task[None] | None = None
        self._coalesced: Coalesced[OutboxEntry, None] = Coalesced(self._send_batch)

    @staticmethod
    def row(
        order_id: uuid.UUID,
        asset_id: str,
        command: Command,
        *,
        available_at: datetime,
        created_at: datetime,
    ) -> OutboxEntry:
        """The outbox row of ``command`` (add it to the session of the change it belongs to).
        Raises ``ValueError`` for a command the shard could only reject as malformed."""
        return OutboxEntry(
            order_id=order_id,
            asset_id=asset_id,
            command=encode_command(command),
            available_at=available_at,
            created_at=created_at,
            trace_parent=tracing.current_parent(),
        )

    async def send(self, rows: Sequence[OutboxEntry]) -> None:
        """Append the rows' commands, unchanged, to their shards' input streams."""
        await self._exchange.send_encoded([(r.asset_id, r.command, r.trace_parent) for r in rows])

    async def _send_batch(self, rows: list[OutboxEntry]) -> list[None]:
        await self.send(rows)
        return [None] * len(rows)

    async def send_now(self, row: OutboxEntry) -> None:
        """Send a committed row at once (in one pipeline with the concurrent requests' rows),
        and record it sent (batched, off the caller's path)."""
        await self._coalesced(row)
        self._sent_ids.append(row.id)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_sent())

    async def _flush_sent(self) -> None:
        while self._sent_ids:
            await asyncio.sleep(MARK_SENT_BATCH_SECONDS)
            ids, self._sent_ids = self._sent_ids, []
            try:
                async with self._sm() as s, s.begin():
                    await s.execute(
                        update(OutboxEntry)
                        .where(OutboxEntry.id.in_(ids))
                        .values(sent_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:
                # Any failure is harmless here (the relay sends these rows again and the shard
                # ignores the repeat), and must not end the API process: log it.
                log.warning("could not mark outbox rows sent", rows=len(ids), error=str(exc))

    async def aclose(self) -> None:
        """Write the pending sent-marks (at shutdown)."""
        if self._flusher is not None and not self._flusher.done():
            await self._flusher

    async def relay(
        self, *, grace: timedelta = RELAY_GRACE, limit: int = 500, clock: Callable[[], datetime]
    ) -> int:
        """Send up to ``limit`` rows nobody sent; returns how many."""
        now = clock()
        async with self._sm() as s, s.begin():
            rows = (
                await s.scalars(
                    select(OutboxEntry)
                    .where(
                        OutboxEntry.sent_at.is_(None),
                        OutboxEntry.available_at <= now,
                        # queued rows (available later than created) are due at once;
                        # the others get the API's grace period to send them itself.
                        (OutboxEntry.available_at > OutboxEntry.created_at)
                        | (OutboxEntry.created_at <= now - grace),
                    )
                    .order_by(OutboxEntry.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await self.send(rows)
            await s.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_([r.id for r in rows]))
                .values(sent_at=utcnow())
            )
        log.info("outbox relayed", commands=len(rows))
        return len(rows)
