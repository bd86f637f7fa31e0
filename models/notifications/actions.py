"""Writing notifications and reading the inbox: every producer goes through here.

- ``record(s, drafts)``: inside the producer's own transaction (the settlement batch, an alert
  claim), ONE statement for any number of drafts: ``INSERT … SELECT FROM unnest(…) ON CONFLICT
  (dedupe_key) DO NOTHING RETURNING``: a source event seen again (a replayed batch, a retried
  job) makes no second row, and only the new rows come back.
- ``Notifier.announce(rows)``: after the commit, publish each new row on its user's channel
  (``notificationAdded``) and plan their delivery (one arq job ``dispatch_notification`` for
  the rows announced together, job id = the first row's). A process that dies between the
  commit and this leaves rows with ``dispatched_at`` NULL; the sweeper
  (``sweep_notifications``, every minute) plans them.
- ``Notifier.notify(*drafts)``: both, for producers without a transaction of their own
  (security events, funds, support replies, documents).

The inbox (``page``, ``unread_count``, ``mark_read``) reads only the caller's rows: another
user's notification does not exist for them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse import redis_client
from bourse.clock import utcnow
from bourse.keys import notification_channel
from models import bulk
from models.notifications.tables import Kind, Notification
from models.pagination import Page, decode_cursor, encode_cursor, page_size

log = structlog.get_logger("bourse.notifications")

MAX_TITLE: Final = 200


@dataclass(frozen=True, slots=True)
class Draft:
    """A notification to write; ``dedupe_key`` names its source event (unique)."""

    user_id: uuid.UUID
    kind: Kind
    title: str
    body: str
    dedupe_key: str
    asset_id: str | None = None
    order_id: uuid.UUID | None = None
    urgent: bool = False
    email: bool = True  # False: the producer emails by itself (no email channel planned)


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: Kind
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None
    asset_id: str | None
    order_id: uuid.UUID | None

    @classmethod
    def of(cls, n: Notification) -> NotificationView:
        return cls(
            n.id,
            n.user_id,
            Kind(n.kind),
            n.title,
            n.body,
            n.created_at,
            n.read_at,
            n.asset_id,
            n.order_id,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": str(self.id),
                "user_id": str(self.user_id),
                "kind": self.kind.value,
                "title": self.title,
                "body": self.body,
                "created_at": self.created_at.isoformat(),
                "read_at": None if self.read_at is None else self.read_at.isoformat(),
                "asset_id": self.asset_id,
                "order_id": None if self.order_id is None else str(self.order_id),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> NotificationView:
        d: dict[str, Any] = json.loads(raw)
        return cls(
            id=uuid.UUID(d["id"]),
            user_id=uuid.UUID(d["user_id"]),
            kind=Kind(d["kind"]),
            title=d["title"],
            body=d["body"],
            created_at=datetime.fromisoformat(d["created_at"]),
            read_at=None if d.get("read_at") is None else datetime.fromisoformat(d["read_at"]),
            asset_id=d.get("asset_id"),
            order_id=None if d.get("order_id") is None else uuid.UUID(d["order_id"]),
        )


_COLUMNS: Final = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("kind", "notification_kind"),
    ("title", "text"),
    ("body", "text"),
    ("asset_id", "text"),
    ("order_id", "uuid"),
    ("urgent", "boolean"),
    ("email", "boolean"),
    ("dedupe_key", "text"),
    ("created_at", "timestamptz"),
)
_RETURNING: Final = (
    "ON CONFLICT (dedupe_key) DO NOTHING "
    "RETURNING id, user_id, kind, title, body, created_at, read_at, asset_id, order_id, dedupe_key"
)
# A kind the user switched off in the app is kept in the inbox (the record), already read, and
# not published live; the same statement reads the preference (no query per row).
_PREFS: Final = "LEFT JOIN notification_preferences p ON p.user_id = r.user_id AND p.kind = r.kind"
_READ_AT: Final = (("read_at", "CASE WHEN p.in_app IS FALSE THEN r.created_at END"),)


async def record(
    s: AsyncSession, drafts: Sequence[Draft], *, now: datetime | None = None
) -> list[NotificationView]:
    """Insert the drafts in one statement (inside the caller's transaction); the rows that are
    new (a dedupe key seen before inserts nothing)."""
    return list((await record_keyed(s, drafts, now=now)).values())


async def record_keyed(
    s: AsyncSession, drafts: Sequence[Draft], *, now: datetime | None = None
) -> dict[str, NotificationView]:
    """``record``, the new rows by their dedupe key."""
    if not drafts:
        return {}
    at = now or utcnow()
    rows = [
        (
            uuid.uuid4(),
            d.user_id,
            d.kind.value,
            d.title[:MAX_TITLE],
            d.body,
            d.asset_id,
            d.order_id,
            d.urgent,
            d.email,
            d.dedupe_key[:200],
            at,
        )
        for d in drafts
    ]
    result = await bulk.insert_rows(
        s, "notifications", _COLUMNS, rows, suffix=_RETURNING, derived=_READ_AT, join=_PREFS
    )
    if result is None:
        return {}
    return {
        r.dedupe_key: NotificationView(
            r.id,
            r.user_id,
            Kind(r.kind),
            r.title,
            r.body,
            r.created_at,
            r.read_at,
            r.asset_id,
            r.order_id,
        )
        for r in result
    }


Dispatch = Callable[[Sequence[uuid.UUID]], Awaitable[None]]


class Notifier:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        prefix: str,
        dispatch: Dispatch,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._redis = redis
        self._prefix = prefix
        self._dispatch = dispatch
        self.clock = clock

    async def notify(self, *drafts: Draft) -> list[NotificationView]:
        """Write the drafts (own transaction) and announce the new ones."""
        async with self._sm.begin() as s:
            rows = await record(s, drafts, now=self.clock())
        await self.announce(rows)
        return rows

    async def announce(self, rows: Sequence[NotificationView]) -> None:
        """After the commit: publish each row live and plan its delivery. Failures are logged,
        never raised: the row is durable and the sweeper plans what was not."""
        if not rows:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for n in rows:
                if n.read_at is None:  # None: the kind is on in the app (see ``record``)
                    channel = notification_channel(self._prefix, str(n.user_id))
                    redis_client.publish(pipe, channel, n.to_json())
            await pipe.execute()
        except Exception:
            log.warning("notification publish failed", exc_info=True, count=len(rows))
        try:  # one job for the lot: a settlement batch pays one enqueue, not one per row
            await self._dispatch([n.id for n in rows])
        except Exception:  # the rows are durable: the sweeper plans them
            log.warning("notification dispatch not queued", exc_info=True, count=len(rows))

    # ---- the inbox ----

    async def page(
        self, user_id: uuid.UUID, *, unread_only: bool, first: int | None, after: str | None
    ) -> Page[NotificationView]:
        """Newest first, keyset on (created_at, id)."""
        limit = page_size(first)
        query = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        if after:
            at, ident = decode_cursor(after, uuid.UUID)
            query = query.where(
                (Notification.created_at < at)
                | ((Notification.created_at == at) & (Notification.id < ident))
            )
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
        async with self._sm() as s:
            found = list((await s.scalars(query.limit(limit + 1))).all())
        return Page([NotificationView.of(n) for n in found[:limit]], len(found) > limit)

    async def get(self, user_id: uuid.UUID, ident: uuid.UUID) -> NotificationView | None:
        async with self._sm() as s:
            n = await s.get(Notification, ident)
        return None if n is None or n.user_id != user_id else NotificationView.of(n)

    async def unread_count(self, user_id: uuid.UUID) -> int:
        async with self._sm() as s:
            found = await s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )
        return int(found or 0)

    async def mark_read(self, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None) -> int:
        """Mark the caller's notifications read (``None``: all); ids of others' rows or unknown
        ids change nothing. How many changed."""
        query = update(Notification).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        if ids is not None:
            query = query.where(Notification.id.in_(list(ids)))
        async with self._sm.begin() as s:
            result = await s.execute(query.values(read_at=self.clock()))
        return int(getattr(result, "rowcount", 0) or 0)

    async def undispatched(self, older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
        """Rows whose delivery was never planned (their producer died after the commit)."""
        async with self._sm() as s:
            found = await s.scalars(
                select(Notification.id)
                .where(
                    Notification.dispatched_at.is_(None),
                    Notification.created_at < self.clock() - older_than,
                )
                .order_by(Notification.created_at)
                .limit(limit)
            )
            return list(found.all())


def cursor_of(n: NotificationView) -> str:
    return encode_cursor(n.created_at, n.id)
