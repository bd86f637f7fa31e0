"""The audit log: append-only, hash-chained, enforced by PostgreSQL (issue 17 item 5).

Each row carries `hash = SHA-256(previous row's hash || this row's canonical content)`, so
altering, deleting or reordering any row breaks every hash after it; `bourse audit verify`
recomputes the chain and names the first row that does not match. PostgreSQL refuses UPDATE,
DELETE and TRUNCATE on the table (a trigger, migration 0017), so the application (or someone
with its credentials) cannot rewrite history; only an operator disabling the trigger can, and
the chain shows where.

Appends are serialised by a transaction-level advisory lock (read the last hash, insert, commit:
a millisecond), in a transaction of their own after the act is committed: an audited act is
recorded once it has happened. A crash between the two loses that one event; the act's own
records (ledger, sessions) still hold it.

What is recorded: sign-ins (and failures), security changes, money movements, staff actions and
admin actions, each mutation declaring its action name (`@mutation(..., audit="...")`), with the
actor, the subject, the outcome (ok or the error codes), the request id and the client address.
Never arguments: they carry passwords, tokens and codes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, LargeBinary, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models import pagination
from models.base import Base
from models.errors import DomainError, ErrorCode

GENESIS = b"\x00" * 32
AUDIT_LOCK = 0x6175646974  # pg_advisory_xact_lock key: "audit"


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None]
    subject_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("ix_audit_events_actor", "actor_id", "id"),
        Index("ix_audit_events_subject", "subject_id", "id"),
    )


@dataclass(frozen=True, slots=True)
class Entry:
    action: str
    outcome: str
    actor_id: uuid.UUID | None
    subject_id: uuid.UUID | None
    request_id: str | None
    ip: str | None


def _content(at: datetime, entry: Entry) -> bytes:
    """The row's canonical form: the same bytes wherever it is recomputed."""
    return json.dumps(
        [
            at.isoformat(),
            entry.action,
            entry.outcome,
            str(entry.actor_id) if entry.actor_id else None,
            str(entry.subject_id) if entry.subject_id else None,
            entry.request_id,
            entry.ip,
        ],
        separators=(",", ":"),
    ).encode()


def chain(previous: bytes, at: datetime, entry: Entry) -> bytes:
    return hashlib.sha256(previous + _content(at, entry)).digest()


@dataclass(frozen=True, slots=True)
class Tampered:
    """The first row whose hash does not follow from the rows before it."""

    id: int
    reason: str


class AuditLog:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def record(self, entry: Entry) -> None:
        async with self._sm.begin() as s:
            await self.append_in(s, entry)

    async def append_in(self, s: AsyncSession, entry: Entry) -> None:
        """Append within the caller's transaction: the event commits (or not) with the act,
        as for a staff read of customer data, which must not happen unrecorded. Holds the
        chain's lock until that transaction ends: keep it short."""
        await s.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK)))
        previous = await s.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        # The database's clock, truncated to what timestamptz stores (microseconds).
        at = (await s.scalar(select(func.clock_timestamp()))) or utcnow()
        s.add(
            AuditEvent(
                at=at,
                action=entry.action,
                outcome=entry.outcome,
                actor_id=entry.actor_id,
                subject_id=entry.subject_id,
                request_id=entry.request_id,
                ip=entry.ip,
                hash=chain(previous or GENESIS, at, entry),
            )
        )

    async def verify(self, batch: int = 5_000) -> tuple[int, Tampered | None]:
        """Walk the whole chain in id order: (rows checked, the first bad row or None)."""
        previous, checked, after = GENESIS, 0, 0
        async with self._sm() as s:
            while True:
                rows = (
                    await s.scalars(
                        select(AuditEvent)
                        .where(AuditEvent.id > after)
                        .order_by(AuditEvent.id)
                        .limit(batch)
                    )
                ).all()
                if not rows:
                    return checked, None
                for row in rows:
                    entry = Entry(
                        row.action, row.outcome, row.actor_id, row.subject_id,
                        row.request_id, row.ip,
                    )  # fmt: skip
                    if row.hash != chain(previous, row.at, entry):
                        return checked, Tampered(row.id, "its content or the row before it changed")
                    previous, after = row.hash, row.id
                    checked += 1

    async def page(
        self,
        *,
        actor_id: uuid.UUID | None,
        subject_id: uuid.UUID | None,
        action: str | None,
        first: int | None,
        after: str | None,
    ) -> tuple[Sequence[AuditEvent], bool]:
        """Newest first, keyset on id."""
        size = pagination.page_size(first)
        query = select(AuditEvent).order_by(AuditEvent.id.desc())
        if actor_id is not None:
            query = query.where(AuditEvent.actor_id == actor_id)
        if subject_id is not None:
            query = query.where(AuditEvent.subject_id == subject_id)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if after is not None:
            (raw,) = pagination.cursor_parts(after, 1)
            if not raw.isdigit():
                raise DomainError.one(ErrorCode.INVALID_INPUT, "Not a valid cursor.", "after")
            query = query.where(AuditEvent.id < int(raw))
        async with self._sm() as s:
            rows = (await s.scalars(query.limit(size + 1))).all()
        return rows[:size], len(rows) > size
