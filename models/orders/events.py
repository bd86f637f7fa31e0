"""The durable log of order events: what ``orderUpdates`` delivers, with a cursor.

The settlement writes every notice (ACCEPTED, FILL, CANCELLED, …) here in the transaction that
made it (``record``: one INSERT per batch), then publishes it, cursor included, after the
commit. ``orderUpdates`` first subscribes to the user's channel, then reads this log after its
starting point (``after``), and drops live messages it has already delivered: nothing published
before the subscription went live is lost, and nothing is delivered twice.

The cursor is the row's identity. It increases per user in commit order because every
transaction that writes a user's events holds that user's ledger account locks (the
settlement locks them first) until it commits: a later event of the same user always gets a
larger id and is visible no earlier. Rows older than the retention (``prune``) are deleted;
a cursor older than that replays what is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import BigInteger, Identity, Index, String, Text, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models import bulk
from models.base import Base
from models.errors import DomainError, ErrorCode

RETENTION: Final = timedelta(days=30)


class OrderEventRow(Base):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    user_id: Mapped[uuid.UUID]
    order_id: Mapped[uuid.UUID]
    event: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)  # the notice's JSON, without its cursor
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_order_events_user", "user_id", "id"),
        Index("ix_order_events_created", "created_at"),
    )


_COLUMNS: Final = (
    ("user_id", "uuid"),
    ("order_id", "uuid"),
    ("event", "text"),
    ("payload", "text"),
    ("created_at", "timestamptz"),
)


async def record(
    s: AsyncSession, events: Sequence[tuple[uuid.UUID, uuid.UUID, str, str]]
) -> list[int]:
    """Write ``(user_id, order_id, event, payload)`` rows in one statement; their cursors, in
    the same order."""
    now = utcnow()
    result = await bulk.insert_rows(
        s, "order_events", _COLUMNS, [(*e, now) for e in events], suffix="RETURNING id"
    )
    # Identities are drawn in insertion order (the rows' order): sorted, they line up.
    return [] if result is None else sorted(r.id for r in result)


def parse_cursor(raw: str | None) -> int | None:
    """An ``orderUpdates`` cursor (as ``OrderUpdate.cursor`` gave it), or INVALID_CURSOR."""
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise DomainError.one(ErrorCode.INVALID_INPUT, "Not an orderUpdates cursor.", "after")
    return int(text)


async def latest(s: AsyncSession, user_id: uuid.UUID) -> int:
    """The user's newest cursor (0 when none): where a subscription without ``after`` starts."""
    found = await s.scalar(
        select(func.max(OrderEventRow.id)).where(OrderEventRow.user_id == user_id)
    )
    return int(found or 0)


async def after(
    s: AsyncSession, user_id: uuid.UUID, cursor: int, limit: int = 500
) -> list[tuple[int, str]]:
    """The user's events after ``cursor``, oldest first: ``(cursor, payload)``."""
    rows = await s.execute(
        select(OrderEventRow.id, OrderEventRow.payload)
        .where(OrderEventRow.user_id == user_id, OrderEventRow.id > cursor)
        .order_by(OrderEventRow.id)
        .limit(limit)
    )
    return [(r.id, r.payload) for r in rows]


async def prune(s: AsyncSession, *, older_than: timedelta = RETENTION) -> int:
    """Delete events older than the retention; how many."""
    result = await s.execute(
        delete(OrderEventRow).where(OrderEventRow.created_at < utcnow() - older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)
