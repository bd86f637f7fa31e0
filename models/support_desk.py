"""Support tickets and their conversation: the rules, the SLA clock, the staff audit trail.

Who sees what:

- A customer sees only their own tickets; another customer's ticket does not exist for them
  (None / NOT_FOUND), by id, in lists and on the stream. Internal notes are filtered out of
  every customer read in SQL (`internal = false`) and never published on the customer's
  channel (`bourse.keys.support_channel`), so no field or stream can carry one.
- Staff (SUPPORT, ADMIN) see every ticket. Each staff read of a customer's data (a ticket and
  its messages, the customer summary, the live stream) first writes a `support_audit` row:
  who, what, when, and why (the ticket).

Statuses: NEW → OPEN (assigned, or the customer writes after a reply) → PENDING_CUSTOMER
(staff replied) → RESOLVED → CLOSED. A customer reply to a RESOLVED ticket within
`REOPEN_WINDOW` (14 days) reopens it; after that the ticket is CLOSED (closed lazily by the
next read or write that touches it) and replies are TICKET_CLOSED.

SLA: due times for the first staff reply and for resolution are set from the priority when the
ticket is opened (and recomputed from `created_at` when the priority changes). A ticket is
breached when the first reply came (or, without one, the clock is) past its due time, or the
resolution likewise. The clock is injectable (`clock=`), so tests move it.

Abuse limits: message length (`support_message_max_chars`), messages per minute and tickets per
hour per user (Redis counters, RATE_LIMITED), control characters refused. Bodies are stored as
written and are always rendered as text by clients (never as HTML).

Offline delivery: a message to a side with no open stream (no presence key) is emailed (arq
`send_email`, job id = the message id, so it is sent once). A staff reply is also a SUPPORT
notification for the customer (inbox, live, push; written in the reply's transaction), whose
email channel is left to the presence-aware email above (``Draft.email = False``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse import keys, redis_client
from bourse.clock import utcnow
from models import pagination
from models.audit import AuditLog, Entry
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.funds import FundTransaction
from models.notifications.actions import NotificationView, Notifier
from models.notifications.actions import record as record_notifications
from models.notifications.messages import support_reply_draft
from models.orders import Order
from models.pagination import Page
from models.portfolios import parse_id
from models.support_files import (
    MAX_ATTACHMENT_BYTES,
    AttachmentMeta,
    AttachmentStore,
    PostgresAttachments,
    safe_filename,
    sniff,
)
from models.support_tables import (
    SupportAttachment,
    SupportAudit,
    SupportCategory,
    SupportMacro,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketStatus,
)
from models.users import STAFF_ROLES, Role, User
from models.validation import bounded_text

REOPEN_WINDOW = timedelta(days=14)
PRESENCE_TTL_SECONDS = 30
SLA_TARGETS: dict[TicketPriority, tuple[timedelta, timedelta]] = {
    # (first response, resolution)
    TicketPriority.URGENT: (timedelta(minutes=30), timedelta(hours=4)),
    TicketPriority.HIGH: (timedelta(hours=2), timedelta(hours=24)),
    TicketPriority.NORMAL: (timedelta(hours=8), timedelta(hours=72)),
    TicketPriority.LOW: (timedelta(hours=24), timedelta(hours=120)),
}
STAFF_STATUSES = frozenset(
    {TicketStatus.OPEN, TicketStatus.PENDING_CUSTOMER, TicketStatus.RESOLVED, TicketStatus.CLOSED}
)
DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)

SendEmail = Callable[[str, str, str, str], Awaitable[None]]


class Queue:
    ALL = "ALL"
    UNASSIGNED = "UNASSIGNED"
    MINE = "MINE"
    BREACHED = "BREACHED"


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: uuid.UUID
    role: Role

    @property
    def staff(self) -> bool:
        return self.role in STAFF_ROLES


@dataclass(frozen=True, slots=True)
class SupportConfig:
    max_chars: int = 5000
    messages_per_minute: int = 20
    tickets_per_hour: int = 10


@dataclass(frozen=True, slots=True)
class TicketView:
    id: uuid.UUID
    user_id: uuid.UUID
    subject: str
    category: SupportCategory
    status: TicketStatus
    priority: TicketPriority
    assignee_id: uuid.UUID | None
    order_id: uuid.UUID | None
    transaction_id: uuid.UUID | None
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    customer_read_at: datetime | None
    staff_read_at: datetime | None
    rating: int | None
    rating_comment: str | None
    created_at: datetime
    updated_at: datetime
    now: datetime  # the clock's reading when the view was made (the SLA is judged at it)

    @property
    def first_response_breached(self) -> bool:
        return (self.first_responded_at or self.now) > self.first_response_due_at

    @property
    def resolution_breached(self) -> bool:
        return (self.resolved_at or self.now) > self.resolution_due_at

    @property
    def sla_breached(self) -> bool:
        return self.first_response_breached or self.resolution_breached


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    id: uuid.UUID
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class MessageView:
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID
    author_username: str
    author_role: Role
    body: str
    internal: bool
    created_at: datetime
    attachment: AttachmentRef | None = None

    def to_doc(self) -> dict[str, object]:
        a = self.attachment
        return {
            "id": str(self.id), "ticketId": str(self.ticket_id), "authorId": str(self.author_id),
            "authorUsername": self.author_username, "authorRole": self.author_role.value,
            "body": self.body, "internal": self.internal,
            "createdAt": self.created_at.isoformat(),
            "attachment": [str(a.id), a.filename, a.content_type, a.size] if a else None,
        }  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> MessageView:
        raw = doc.get("attachment")
        ref = None
        if isinstance(raw, list):
            ref = AttachmentRef(uuid.UUID(str(raw[0])), str(raw[1]), str(raw[2]), int(raw[3]))
        return cls(
            uuid.UUID(str(doc["id"])), uuid.UUID(str(doc["ticketId"])),
            uuid.UUID(str(doc["authorId"])), str(doc["authorUsername"]),
            Role(str(doc["authorRole"])), str(doc["body"]), bool(doc["internal"]),
            datetime.fromisoformat(str(doc["createdAt"])), ref,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditView:
    id: uuid.UUID
    actor_id: uuid.UUID
    actor_username: str
    subject_id: uuid.UUID
    ticket_id: uuid.UUID
    action: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MacroView:
    id: uuid.UUID
    title: str
    body: str


def _ticket_view(t: SupportTicket, now: datetime) -> TicketView:
    return TicketView(
        t.id, t.user_id, t.subject, t.category, t.status, t.priority, t.assignee_id, t.order_id,
        t.transaction_id, t.first_response_due_at, t.resolution_due_at, t.first_responded_at,
        t.resolved_at, t.customer_read_at, t.staff_read_at, t.rating, t.rating_comment,
        t.created_at, t.updated_at, now,
    )  # fmt: skip


def not_found(what: str = "ticket", field: str | None = "ticketId") -> DomainError:
    return DomainError.one(ErrorCode.NOT_FOUND, f"No such {what}.", field)


def default_priority(category: SupportCategory) -> TicketPriority:
    return TicketPriority.HIGH if category is SupportCategory.SECURITY else TicketPriority.NORMAL


class SupportDesk:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        prefix: str,
        config: SupportConfig,
        send_email: SendEmail,
        link_base: Callable[[], str],
        files: AttachmentStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._audit_log = audit  # staff reads are also events in the hash-chained audit log
        self._notifier = notifier  # a staff reply is a SUPPORT notification for the customer
        self._link_base = link_base
        self.files: AttachmentStore = files or PostgresAttachments(sessionmaker)
        self._sm = sessionmaker
        self._redis = redis
        self._prefix = prefix
        self.config = config
        self._send_email = send_email
        self.clock = clock

    # ---- helpers ----

    def _clean_body(self, raw: str | None, field: str = "body") -> str:
        body = (raw or "").strip()
        if len(body) > self.config.max_chars:
            raise DomainError.one(
                ErrorCode.MESSAGE_TOO_LONG,
                f"A message is at most {self.config.max_chars} characters.",
                field,
            )
        body = bounded_text(body, self.config.max_chars, field)
        if not body:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Write a message.", field)
        return body

    async def _rate(self, kind: str, user_id: uuid.UUID, limit: int, window: int) -> None:
        key = keys.support_rate_key(self._prefix, kind, str(user_id))
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        count, _ = await pipe.execute()
        if int(count) > limit:
            raise DomainError.one(
                ErrorCode.RATE_LIMITED, "Too many messages: wait a minute and try again."
            )

    async def _close_stale(self, s: AsyncSession, user_id: uuid.UUID | None = None) -> None:
        now = self.clock()
        stmt = (
            update(SupportTicket)
            .where(
                SupportTicket.status == TicketStatus.RESOLVED,
                SupportTicket.resolved_at < now - REOPEN_WINDOW,
            )
            .values(status=TicketStatus.CLOSED, closed_at=now, updated_at=now)
        )
        if user_id is not None:
            stmt = stmt.where(SupportTicket.user_id == user_id)
        await s.execute(stmt)

    async def _visible(
        self, s: AsyncSession, viewer: Viewer, ticket_id: str | uuid.UUID | None, *, lock: bool
    ) -> SupportTicket:
        ident = parse_id(ticket_id)
        if ident is None:
            raise not_found()
        stmt = select(SupportTicket).where(SupportTicket.id == ident)
        if not viewer.staff:
            stmt = stmt.where(SupportTicket.user_id == viewer.user_id)
        if lock:
            stmt = stmt.with_for_update()
        found = await s.scalar(stmt)
        if found is None:
            raise not_found()
        if found.status is TicketStatus.RESOLVED and found.resolved_at is not None:
            now = self.clock()
            if found.resolved_at < now - REOPEN_WINDOW:
                found.status, found.closed_at, found.updated_at = TicketStatus.CLOSED, now, now
        return found

    async def _audit(
        self, s: AsyncSession, viewer: Viewer, ticket: SupportTicket, action: str
    ) -> None:
        s.add(
            SupportAudit(
                id=uuid.uuid4(), actor_id=viewer.user_id, subject_id=ticket.user_id,
                ticket_id=ticket.id, action=action, created_at=self.clock(),
            )
        )  # fmt: skip
        if self._audit_log is not None:
            request_id = structlog.contextvars.get_contextvars().get("request_id")
            await self._audit_log.append_in(
                s,
                Entry(
                    action=f"support.{action.lower()}", outcome="ok", actor_id=viewer.user_id,
                    subject_id=ticket.user_id, request_id=request_id, ip=None,
                ),
            )  # fmt: skip

    async def _publish(self, ticket_id: uuid.UUID, doc: dict[str, object], internal: bool) -> None:
        data = json.dumps(doc)
        channel = keys.support_channel(self._prefix, str(ticket_id), True)
        await redis_client.publish(self._redis, channel, data)
        if not internal:
            channel = keys.support_channel(self._prefix, str(ticket_id), False)
            await redis_client.publish(self._redis, channel, data)

    # ---- customers ----

    async def open_ticket(
        self,
        user_id: uuid.UUID,
        *,
        subject: str | None,
        body: str | None,
        category: SupportCategory,
        order_id: str | None = None,
        transaction_id: str | None = None,
    ) -> TicketView:
        checks = ProblemCollector()
        clean_subject = checks.check(lambda: bounded_text(subject or "", 200, "subject"))
        if clean_subject == "":
            checks.problems.append(Problem(ErrorCode.INVALID_INPUT, "Write a subject.", "subject"))
        clean_body = checks.check(lambda: self._clean_body(body))
        checks.raise_if_any()
        assert clean_subject is not None
        assert clean_body is not None
        order_ident = parse_id(order_id) if order_id else None
        txn_ident = parse_id(transaction_id) if transaction_id else None
        await self._rate("tickets", user_id, self.config.tickets_per_hour, 3600)
        now = self.clock()
        priority = default_priority(category)
        first_due, resolve_due = SLA_TARGETS[priority]
        async with self._sm.begin() as s:
            if order_id:
                owner = await s.scalar(select(Order.user_id).where(Order.id == order_ident))
                if order_ident is None or owner != user_id:
                    raise not_found("order", "orderId")
            if transaction_id:
                owner = await s.scalar(
                    select(FundTransaction.user_id).where(FundTransaction.id == txn_ident)
                )
                if txn_ident is None or owner != user_id:
                    raise not_found("transaction", "transactionId")
            ticket = SupportTicket(
                id=uuid.uuid4(), user_id=user_id, subject=clean_subject, category=category,
                status=TicketStatus.NEW, priority=priority, assignee_id=None,
                order_id=order_ident, transaction_id=txn_ident,
                first_response_due_at=now + first_due, resolution_due_at=now + resolve_due,
                customer_read_at=now, created_at=now, updated_at=now,
            )  # fmt: skip
            s.add(ticket)
            await s.flush()
            s.add(
                SupportMessage(
                    id=uuid.uuid4(), ticket_id=ticket.id, user_id=user_id, author_id=user_id,
                    body=clean_body, internal=False, created_at=now,
                )
            )  # fmt: skip
            return _ticket_view(ticket, now)

    async def rate(
        self, user_id: uuid.UUID, ticket_id: str, rating: int, comment: str | None
    ) -> TicketView:
        if not 1 <= rating <= 5:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "A rating is 1 to 5.", "rating")
        clean = bounded_text(comment or "", 1000, "comment") or None
        async with self._sm.begin() as s:
            ticket = await self._visible(s, Viewer(user_id, Role.CUSTOMER), ticket_id, lock=True)
            if ticket.status not in DONE:
                raise DomainError.one(
                    ErrorCode.TICKET_NOT_RESOLVED, "Rate a ticket once it is resolved."
                )
            ticket.rating, ticket.rating_comment = rating, clean
            ticket.updated_at = self.clock()
            return _ticket_view(ticket, self.clock())

    # ---- both sides ----

    async def ticket(self, viewer: Viewer, ticket_id: str | None) -> TicketView | None:
        """The ticket, or None when it does not exist for the viewer. Staff reads are audited."""
        try:
            async with self._sm.begin() as s:
                ticket = await self._visible(s, viewer, ticket_id, lock=False)
                if viewer.staff:
                    await self._audit(s, viewer, ticket, "VIEW_TICKET")
                return _ticket_view(ticket, self.clock())
        except DomainError:
            return None

    async def tickets(
        self,
        viewer: Viewer,
        *,
        status: TicketStatus | None = None,
        assignee_id: str | None = None,
        queue: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Page[TicketView]:
        """Newest first. Customers: their own (filters other than status ignored)."""
        limit = pagination.page_size(first)
        now = self.clock()
        stmt = select(SupportTicket)
        if not viewer.staff:
            stmt = stmt.where(SupportTicket.user_id == viewer.user_id)
        else:
            if assignee_id:
                ident = parse_id(assignee_id)
                if ident is None:
                    raise DomainError.one(ErrorCode.INVALID_INPUT, "Not an id.", "assigneeId")
                stmt = stmt.where(SupportTicket.assignee_id == ident)
            if queue == Queue.UNASSIGNED:
                stmt = stmt.where(SupportTicket.assignee_id.is_(None))
            elif queue == Queue.MINE:
                stmt = stmt.where(SupportTicket.assignee_id == viewer.user_id)
            elif queue == Queue.BREACHED:
                stmt = stmt.where(
                    or_(
                        func.coalesce(SupportTicket.first_responded_at, now)
                        > SupportTicket.first_response_due_at,
                        func.coalesce(SupportTicket.resolved_at, now)
                        > SupportTicket.resolution_due_at,
                    )
                )
        if status is not None:
            stmt = stmt.where(SupportTicket.status == status)
        if after:
            at, ident2 = pagination.decode_cursor(after, uuid.UUID)
            stmt = stmt.where(
                or_(
                    SupportTicket.created_at < at,
                    and_(SupportTicket.created_at == at, SupportTicket.id < ident2),
                )
            )
        stmt = stmt.order_by(SupportTicket.created_at.desc(), SupportTicket.id.desc()).limit(
            limit + 1
        )
        async with self._sm.begin() as s:
            await self._close_stale(s, None if viewer.staff else viewer.user_id)
            found = list(await s.scalars(stmt))
        return Page([_ticket_view(t, now) for t in found[:limit]], len(found) > limit)

    @staticmethod
    def ticket_cursor(view: TicketView) -> str:
        return pagination.encode_cursor(view.created_at, view.id)

    @staticmethod
    def message_cursor(view: MessageView) -> str:
        return pagination.encode_cursor(view.created_at, view.id)

    async def messages(
        self,
        viewer: Viewer,
        ticket_id: uuid.UUID,
        *,
        first: int | None = 50,
        after: str | None = None,
    ) -> Page[MessageView]:
        """Oldest first. Customers never get internal notes (filtered here, in SQL)."""
        limit = pagination.page_size(first, default=50)
        stmt = (
            select(
                SupportMessage, User.username, User.role, SupportAttachment.filename,
                SupportAttachment.content_type, SupportAttachment.size,
            )
            .join(User, User.id == SupportMessage.author_id)
            .outerjoin(SupportAttachment, SupportAttachment.id == SupportMessage.attachment_id)
            .where(SupportMessage.ticket_id == ticket_id)
        )  # fmt: skip
        if not viewer.staff:
            stmt = stmt.where(
                SupportMessage.user_id == viewer.user_id, SupportMessage.internal.is_(False)
            )
        if after:
            at, ident = pagination.decode_cursor(after, uuid.UUID)
            stmt = stmt.where(
                or_(
                    SupportMessage.created_at > at,
                    and_(SupportMessage.created_at == at, SupportMessage.id > ident),
                )
            )
        stmt = stmt.order_by(SupportMessage.created_at, SupportMessage.id).limit(limit + 1)
        async with self._sm() as s:
            rows = (await s.execute(stmt)).all()
        items = [
            MessageView(
                m.id, m.ticket_id, m.author_id, name, role, m.body, m.internal, m.created_at,
                AttachmentRef(m.attachment_id, fname, ctype, size) if m.attachment_id else None,
            )
            for m, name, role, fname, ctype, size in rows[:limit]
        ]  # fmt: skip
        return Page(items, len(rows) > limit)

    async def send(
        self,
        viewer: Viewer,
        ticket_id: str | None,
        body: str | None,
        internal: bool = False,
        *,
        attachment: tuple[str | None, bytes] | None = None,
    ) -> MessageView:
        """A message (or, with `attachment` = (filename, bytes), a file as a message)."""
        if internal and not viewer.staff:
            raise DomainError.one(
                ErrorCode.NOT_ALLOWED, "Only support staff write internal notes.", "internal"
            )
        content_type = None
        if attachment is not None:
            if len(attachment[1]) > MAX_ATTACHMENT_BYTES:
                raise DomainError.one(
                    ErrorCode.ATTACHMENT_TOO_LARGE, "Attachments are at most 10 MB.", "file"
                )
            content_type = sniff(attachment[1])
            if content_type is None:
                raise DomainError.one(
                    ErrorCode.UNSUPPORTED_ATTACHMENT,
                    "Attach an image (PNG, JPEG, GIF, WebP) or a PDF.",
                    "file",
                )
            body = safe_filename(attachment[0], content_type)
        clean = self._clean_body(body)
        await self._rate("messages", viewer.user_id, self.config.messages_per_minute, 60)
        async with self._sm.begin() as s:
            ticket = await self._visible(s, viewer, ticket_id, lock=True)
            if ticket.status is TicketStatus.CLOSED:
                raise DomainError.one(
                    ErrorCode.TICKET_CLOSED, "This ticket is closed: open a new one."
                )
            now = self.clock()
            author = await s.get(User, viewer.user_id)
            assert author is not None
            if viewer.staff:
                await self._audit(s, viewer, ticket, "REPLY" if not internal else "NOTE")
                if not internal:
                    ticket.first_responded_at = ticket.first_responded_at or now
                    if ticket.status in (TicketStatus.NEW, TicketStatus.OPEN):
                        ticket.status = TicketStatus.PENDING_CUSTOMER
                    ticket.staff_read_at = now
            else:
                if ticket.status is TicketStatus.RESOLVED:
                    ticket.resolved_at = None  # reopened within the window
                if ticket.status in (TicketStatus.PENDING_CUSTOMER, TicketStatus.RESOLVED):
                    ticket.status = TicketStatus.OPEN
                ticket.customer_read_at = now
            ticket.updated_at = now
            ref = None
            if attachment is not None and content_type is not None:
                meta = AttachmentMeta(
                    uuid.uuid4(), ticket.id, ticket.user_id, clean, content_type,
                    len(attachment[1]), now,
                )  # fmt: skip
                await self.files.put(s, meta, viewer.user_id, attachment[1])
                ref = AttachmentRef(meta.id, meta.filename, meta.content_type, meta.size)
            message = SupportMessage(
                id=uuid.uuid4(), ticket_id=ticket.id, user_id=ticket.user_id,
                author_id=viewer.user_id, body=clean, internal=internal, created_at=now,
                attachment_id=ref.id if ref else None,
            )  # fmt: skip
            s.add(message)
            owner = await s.get(User, ticket.user_id)
            assignee = await s.get(User, ticket.assignee_id) if ticket.assignee_id else None
            view = MessageView(
                message.id, ticket.id, viewer.user_id, author.username, author.role, clean,
                internal, now, ref,
            )  # fmt: skip
            subject = ticket.subject
            told: list[NotificationView] = []
            if viewer.staff and not internal and self._notifier is not None:
                draft = support_reply_draft(
                    ticket.user_id, message.id, subject, author.username, clean
                )
                told = await record_notifications(s, [draft], now=now)
        if self._notifier is not None:
            await self._notifier.announce(told)
        await self._publish(ticket.id, {"kind": "message", "message": view.to_doc()}, internal)
        if not internal:
            recipient = assignee if viewer.staff is False else owner
            await self._notify_offline(view, subject, recipient, to_staff=not viewer.staff)
        return view

    async def _notify_offline(
        self, message: MessageView, subject: str, recipient: User | None, *, to_staff: bool
    ) -> None:
        if recipient is None:
            return
        presence = keys.support_presence_key(self._prefix, str(message.ticket_id), to_staff)
        if await self._redis.exists(presence):
            return
        link = f"{self._link_base()}/support/{message.ticket_id}"
        await self._send_email(
            recipient.email,
            f"New reply on your support ticket: {subject}"
            if not to_staff
            else f"Customer replied: {subject}",
            f"{message.author_username} wrote:\n\n{message.body}\n\nReply at {link}\n",
            f"support-message:{message.id}",
        )

    async def attachment(
        self, viewer: Viewer, attachment_id: str | None
    ) -> tuple[AttachmentMeta, bytes] | None:
        """The file, if its ticket exists for the viewer (staff reads are audited)."""
        ident = parse_id(attachment_id)
        meta = await self.files.meta(ident) if ident else None
        if meta is None:
            return None
        async with self._sm.begin() as s:
            try:
                ticket = await self._visible(s, viewer, meta.ticket_id, lock=False)
            except DomainError:
                return None
            internal = await s.scalar(
                select(SupportMessage.internal).where(SupportMessage.attachment_id == meta.id)
            )
            if internal and not viewer.staff:
                return None
            if viewer.staff:
                await self._audit(s, viewer, ticket, "VIEW_ATTACHMENT")
        data = await self.files.read(meta.id)
        return (meta, data) if data is not None else None

    async def mark_read(self, viewer: Viewer, ticket_id: str | None) -> TicketView:
        async with self._sm.begin() as s:
            ticket = await self._visible(s, viewer, ticket_id, lock=True)
            now = self.clock()
            if viewer.staff:
                ticket.staff_read_at = now
            else:
                ticket.customer_read_at = now
            view = _ticket_view(ticket, now)
        await self._publish(
            view.id, await self._activity_doc(viewer, "READ", view.id, now), internal=False
        )
        return view

    async def typing(self, viewer: Viewer, ticket_id: str | None) -> None:
        """A transient 'is typing' signal: no write, at most one published per 2 s per user."""
        async with self._sm() as s:
            ticket = await self._visible(s, viewer, ticket_id, lock=False)
        gate = keys.support_rate_key(self._prefix, f"typing:{ticket.id}", str(viewer.user_id))
        if await self._redis.set(gate, b"1", ex=2, nx=True):
            doc = await self._activity_doc(viewer, "TYPING", ticket.id, self.clock())
            await self._publish(ticket.id, doc, internal=False)

    async def _activity_doc(
        self, viewer: Viewer, kind: str, ticket_id: uuid.UUID, at: datetime
    ) -> dict[str, object]:
        async with self._sm() as s:
            username = await s.scalar(select(User.username).where(User.id == viewer.user_id))
        return {
            "kind": kind.lower(), "ticketId": str(ticket_id), "userId": str(viewer.user_id),
            "username": username or "", "role": viewer.role.value, "at": at.isoformat(),
        }  # fmt: skip

    async def open_stream(self, viewer: Viewer, ticket_id: str | None) -> TicketView | None:
        """Admit a stream of the ticket's events (audited for staff) and mark the side present."""
        view = await self.ticket(viewer, ticket_id)
        if view is not None:
            await self.still_present(viewer, view.id)
        return view

    async def still_present(self, viewer: Viewer, ticket_id: uuid.UUID) -> None:
        key = keys.support_presence_key(self._prefix, str(ticket_id), viewer.staff)
        await self._redis.set(key, b"1", ex=PRESENCE_TTL_SECONDS)

    def channel(self, viewer: Viewer, ticket_id: uuid.UUID) -> str:
        return keys.support_channel(self._prefix, str(ticket_id), viewer.staff)

    # ---- staff ----

    async def assign(self, staff: Viewer, ticket_id: str, assignee_id: str) -> TicketView:
        ident = parse_id(assignee_id)
        async with self._sm.begin() as s:
            ticket = await self._visible(s, staff, ticket_id, lock=True)
            assignee = await s.get(User, ident) if ident else None
            if assignee is None or assignee.role not in STAFF_ROLES:
                raise DomainError.one(
                    ErrorCode.INVALID_ASSIGNEE, "Assign to a SUPPORT or ADMIN user.", "assigneeId"
                )
            if ticket.status is TicketStatus.CLOSED:
                raise DomainError.one(ErrorCode.TICKET_CLOSED, "This ticket is closed.")
            now = self.clock()
            ticket.assignee_id = assignee.id
            if ticket.status is TicketStatus.NEW:
                ticket.status = TicketStatus.OPEN
            ticket.updated_at = now
            await self._audit(s, staff, ticket, "ASSIGN")
            return _ticket_view(ticket, now)

    async def set_status(self, staff: Viewer, ticket_id: str, status: TicketStatus) -> TicketView:
        async with self._sm.begin() as s:
            ticket = await self._visible(s, staff, ticket_id, lock=True)
            if status not in STAFF_STATUSES or ticket.status is TicketStatus.CLOSED:
                raise DomainError.one(
                    ErrorCode.INVALID_STATUS_TRANSITION,
                    f"A {ticket.status.value} ticket cannot become {status.value}.",
                    "status",
                )
            now = self.clock()
            if status is TicketStatus.RESOLVED:
                ticket.resolved_at = now
            elif status is TicketStatus.CLOSED:
                ticket.resolved_at = ticket.resolved_at or now
                ticket.closed_at = now
            else:
                ticket.resolved_at = None
            ticket.status = status
            ticket.updated_at = now
            await self._audit(s, staff, ticket, f"STATUS_{status.value}")
            return _ticket_view(ticket, now)

    async def set_priority(
        self, staff: Viewer, ticket_id: str, priority: TicketPriority
    ) -> TicketView:
        async with self._sm.begin() as s:
            ticket = await self._visible(s, staff, ticket_id, lock=True)
            first_due, resolve_due = SLA_TARGETS[priority]
            ticket.priority = priority
            ticket.first_response_due_at = ticket.created_at + first_due
            ticket.resolution_due_at = ticket.created_at + resolve_due
            ticket.updated_at = self.clock()
            await self._audit(s, staff, ticket, "PRIORITY")
            return _ticket_view(ticket, self.clock())

    async def audit_customer_read(self, staff: Viewer, ticket_id: str) -> uuid.UUID:
        """Write the audit row for reading the ticket's customer's profile and accounts, and
        return that customer's id (the caller then reads only this customer's data)."""
        async with self._sm.begin() as s:
            ticket = await self._visible(s, staff, ticket_id, lock=False)
            await self._audit(s, staff, ticket, "VIEW_CUSTOMER")
            return ticket.user_id

    async def audit_trail(
        self, *, ticket_id: str | None = None, subject_id: str | None = None, limit: int = 100
    ) -> list[AuditView]:
        stmt = (
            select(SupportAudit, User.username)
            .join(User, User.id == SupportAudit.actor_id)
            .order_by(SupportAudit.created_at.desc(), SupportAudit.id.desc())
            .limit(min(max(limit, 1), 500))
        )
        if ticket_id is not None:
            ident = parse_id(ticket_id)
            stmt = stmt.where(SupportAudit.ticket_id == ident)
        if subject_id is not None:
            stmt = stmt.where(SupportAudit.subject_id == parse_id(subject_id))
        async with self._sm() as s:
            rows = (await s.execute(stmt)).all()
        return [
            AuditView(a.id, a.actor_id, name, a.subject_id, a.ticket_id, a.action, a.created_at)
            for a, name in rows
        ]

    async def macros(self) -> list[MacroView]:
        async with self._sm() as s:
            found = await s.scalars(select(SupportMacro).order_by(SupportMacro.title))
            return [MacroView(m.id, m.title, m.body) for m in found]

    async def save_macro(self, staff: Viewer, title: str, body: str) -> MacroView:
        checks = ProblemCollector()
        clean_title = checks.check(lambda: bounded_text(title, 120, "title"))
        if clean_title == "":
            checks.problems.append(Problem(ErrorCode.INVALID_INPUT, "Write a title.", "title"))
        clean_body = checks.check(lambda: self._clean_body(body))
        checks.raise_if_any()
        assert clean_title is not None
        assert clean_body is not None
        async with self._sm.begin() as s:
            found = await s.scalar(select(SupportMacro).where(SupportMacro.title == clean_title))
            if found is None:
                found = SupportMacro(
                    id=uuid.uuid4(), title=clean_title, body=clean_body,
                    created_by=staff.user_id, created_at=self.clock(),
                )  # fmt: skip
                s.add(found)
            else:
                found.body = clean_body
            return MacroView(found.id, found.title, found.body)

    async def staff_users(self) -> list[User]:
        async with self._sm() as s:
            return list(
                await s.scalars(
                    select(User).where(User.role.in_(list(STAFF_ROLES))).order_by(User.username)
                )
            )
