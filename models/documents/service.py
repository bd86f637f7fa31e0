"""Documents: request, list, generate (in a worker job), download.

Generation is idempotent and resumable: the job renders the document from the database, writes
the object under a key derived from the document's id (a re-run overwrites the same key), and
only then turns the row READY with one ``UPDATE … WHERE status = 'PENDING'``. A worker killed
mid-way leaves the row PENDING (never READY without its object); the job is retried by arq, and
the sweeper (``pending``) re-enqueues rows left PENDING longer than
``document_retry_after_seconds``. After ``MAX_ATTEMPTS`` the row is FAILED with the reason.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import String, cast, extract, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ENUM, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import pagination
from models.documents.confirmation import build_confirmation, confirmation_pdf
from models.documents.export import build_export, export_zip
from models.documents.render import statement_csv, statement_pdf, tax_csv, tax_pdf
from models.documents.statement import build_statement, period_bounds
from models.documents.tables import Document, DocumentFormat, DocumentKind, DocumentStatus
from models.documents.tax import build_tax
from models.envelope import FieldCipher
from models.errors import DomainError, ErrorCode
from models.funds import FundTransaction, TransactionType
from models.ledger import LedgerAccount
from models.notifications.actions import NotificationView, Notifier
from models.notifications.actions import record as record_notifications
from models.notifications.messages import statement_draft
from models.orders.tables import Order
from models.positions import RealizedGain
from models.storage import ObjectStore

log = structlog.get_logger("models.documents")

MAX_ATTEMPTS = 3
MAX_PERIOD_DAYS = 366
EARLIEST = date(2000, 1, 1)

Enqueue = Callable[[uuid.UUID, int], Awaitable[None]]
"""(document id, attempt) → enqueue its generation job."""


@dataclass(frozen=True, slots=True)
class DocumentPage:
    items: list[Document]
    has_next_page: bool


def encode_cursor(doc: Document) -> str:
    return pagination.encode_cursor(doc.created_at, doc.id)


def statement_key(fmt: DocumentFormat, start: date, end: date) -> str:
    return f"{DocumentKind.MONTHLY_STATEMENT.value}:{fmt.value}:{start}:{end}"


def previous_month(today: date) -> tuple[date, date]:
    first_this = today.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    return last_prev.replace(day=1), last_prev


# Documents whose readiness is a STATEMENT notification (a trade confirmation per order is not:
# the order's own notification already said it filled).
READY_NOTICE: dict[DocumentKind, str] = {
    DocumentKind.MONTHLY_STATEMENT: "statement",
    DocumentKind.TAX_1099: "tax document",
    DocumentKind.DATA_EXPORT: "data export",
}


class Documents:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: ObjectStore,
        enqueue: Enqueue,
        *,
        retry_after: timedelta = timedelta(minutes=2),
        notifier: Notifier | None = None,
        fields: FieldCipher | None = None,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._fields = fields  # opens sealed personal data for a data export
        # The documents list may lag (models/replicas.py); one document by id (polled for
        # READY after a request) is read on the primary.
        self._reads = reads or sessionmaker
        self._notifier = notifier  # statements, tax documents and exports say they are ready
        self._sm = sessionmaker
        self.store = store
        self._enqueue = enqueue
        self.retry_after = retry_after

    # ---- requests ----

    async def request_statement(
        self, user_id: uuid.UUID, start: date | None, end: date | None, fmt: DocumentFormat
    ) -> Document:
        today = utcnow().date()
        if start is None or end is None or start > end:
            raise DomainError.one(
                ErrorCode.INVALID_DATE_RANGE, "periodStart must be on or before periodEnd.",
                "periodStart",
            )  # fmt: skip
        if end > today or start < EARLIEST or (end - start).days >= MAX_PERIOD_DAYS:
            raise DomainError.one(
                ErrorCode.INVALID_DATE_RANGE,
                f"A statement covers days up to today ({today}), at most {MAX_PERIOD_DAYS} days, "
                f"from {EARLIEST} on.",
                "periodEnd",
            )
        if fmt not in (DocumentFormat.PDF, DocumentFormat.CSV):
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Statements are PDF or CSV.", "format")
        key = statement_key(fmt, start, end)
        if end == today:
            # The period is not over: each request is its own statement "as of" now.
            key += f":asof:{utcnow().isoformat()}"
        doc = await self._create(user_id, DocumentKind.MONTHLY_STATEMENT, fmt, start, end, key)
        return doc

    async def request_data_export(self, user_id: uuid.UUID) -> Document:
        """Everything held about the user, as a ZIP (`models.documents.export`); each request
        is its own export, as of its moment."""
        today = utcnow().date()
        key = f"export:{utcnow().isoformat()}"
        return await self._create(
            user_id, DocumentKind.DATA_EXPORT, DocumentFormat.ZIP, today, today, key
        )

    async def request_tax_document(
        self, user_id: uuid.UUID, year: int | None, fmt: DocumentFormat
    ) -> Document:
        """The consolidated 1099 of ``year``: the current version, or a CORRECTED one that
        supersedes it when the figures changed since it was issued."""
        this_year = utcnow().year
        if year is None or not EARLIEST.year <= year <= this_year:
            raise DomainError.one(
                ErrorCode.INVALID_DATE_RANGE, f"A tax year from {EARLIEST.year} to {this_year}.",
                "year",
            )  # fmt: skip
        if fmt not in (DocumentFormat.PDF, DocumentFormat.CSV):
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, "Tax documents are PDF or CSV.", "format"
            )
        async with self._sm() as s:
            digest = (await build_tax(s, user_id, year)).digest()
            prefix = f"{DocumentKind.TAX_1099.value}:{fmt.value}:{year}:v"
            versions = list(
                await s.scalars(
                    select(Document)
                    .where(Document.user_id == user_id, Document.natural_key.startswith(prefix))
                    .order_by(Document.created_at.desc())
                )
            )
        latest = versions[0] if versions else None
        if latest is not None and (
            latest.content_digest == digest or latest.status is DocumentStatus.PENDING
        ):
            return latest
        return await self._create(
            user_id, DocumentKind.TAX_1099, fmt, date(year, 1, 1), date(year, 12, 31),
            f"{prefix}{len(versions) + 1}", corrected=latest is not None,
            supersedes_id=latest.id if latest else None, content_digest=digest,
        )  # fmt: skip

    async def create_tax_documents(self, year: int) -> int:
        """The year's 1099s (PDF and CSV) for every account with a sale or a dividend in it."""
        start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        async with self._sm() as s:
            sellers = select(RealizedGain.user_id).where(
                RealizedGain.sold_at >= start, RealizedGain.sold_at < end
            )
            payees = select(FundTransaction.user_id).where(
                FundTransaction.type == TransactionType.DIVIDEND,
                FundTransaction.completed_at >= start,
                FundTransaction.completed_at < end,
            )
            users = list(await s.scalars(sellers.union(payees)))
        for user_id in users:
            for fmt in (DocumentFormat.PDF, DocumentFormat.CSV):
                await self.request_tax_document(user_id, year, fmt)
        return len(users)

    async def _create(
        self,
        user_id: uuid.UUID,
        kind: DocumentKind,
        fmt: DocumentFormat,
        start: date,
        end: date,
        key: str,
        reference_id: str | None = None,
        *,
        corrected: bool = False,
        supersedes_id: uuid.UUID | None = None,
        content_digest: str | None = None,
    ) -> Document:
        """The document of (user, key): created PENDING and enqueued, or the existing one (a
        FAILED one is given another run)."""
        now = utcnow()
        async with self._sm.begin() as s:
            await s.execute(
                insert(Document)
                .values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    kind=kind,
                    format=fmt,
                    period_start=start,
                    period_end=end,
                    reference_id=reference_id,
                    natural_key=key,
                    status=DocumentStatus.PENDING,
                    attempts=0,
                    corrected=corrected,
                    supersedes_id=supersedes_id,
                    content_digest=content_digest,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_documents_natural_key")
            )
            doc = (
                await s.execute(
                    select(Document)
                    .where(Document.user_id == user_id, Document.natural_key == key)
                    .with_for_update()
                )
            ).scalar_one()
            if doc.status is DocumentStatus.FAILED:
                doc.status = DocumentStatus.PENDING
                doc.attempts = 0
                doc.failure_reason = None
                doc.updated_at = now
            s.expunge(doc)
        if doc.status is DocumentStatus.PENDING:
            await self._enqueue(doc.id, doc.attempts)
        return doc

    async def create_monthly(self, start: date, end: date) -> int:
        """Statements (PDF and CSV) of [start, end] for every account that had a ledger account
        before its end; one set-based insert, idempotent. Returns the documents created."""
        now = utcnow()
        async with self._sm.begin() as s:
            # Every account that existed before the period ended.
            _, until = period_bounds(start, end)
            users = select(LedgerAccount.user_id).where(LedgerAccount.user_id.is_not(None))
            users = users.where(LedgerAccount.created_at < until).distinct()
            created = 0
            for fmt in (DocumentFormat.PDF, DocumentFormat.CSV):
                rows = await s.execute(
                    insert(Document)
                    .from_select(
                        [
                            "id",
                            "user_id",
                            "kind",
                            "format",
                            "period_start",
                            "period_end",
                            "natural_key",
                            "status",
                            "attempts",
                            "corrected",
                            "created_at",
                            "updated_at",
                        ],
                        select(
                            func.gen_random_uuid(),
                            users.subquery().c.user_id,
                            _enum(DocumentKind.MONTHLY_STATEMENT, "document_kind"),
                            _enum(fmt, "document_format"),
                            _lit(start),
                            _lit(end),
                            _lit(statement_key(fmt, start, end)),
                            _enum(DocumentStatus.PENDING, "document_status"),
                            _lit(0),
                            _lit(False),
                            _lit(now),
                            _lit(now),
                        ),
                    )
                    .on_conflict_do_nothing(constraint="uq_documents_natural_key")
                    .returning(Document.id)
                )
                ids = list(rows.scalars())
                created += len(ids)
        await self.enqueue_pending(now - timedelta(seconds=1), only_new=True)
        return created

    async def create_confirmations(self, since_hours: int) -> int:
        """A confirmation for every order with fills that reached a final state (or every fill
        of a still-open order) in the last ``since_hours`` and has none yet."""
        now = utcnow()
        since = now - timedelta(hours=since_hours)
        async with self._sm() as s:
            orders = (
                await s.execute(
                    select(Order.id, Order.user_id, Order.updated_at)
                    .where(Order.updated_at >= since, Order.filled_quantity > 0)
                    .where(Order.status.in_(["EXECUTED", "CANCELLED", "EXPIRED"]))
                    .where(
                        ~select(Document.id)
                        .where(
                            Document.user_id == Order.user_id,
                            Document.kind == DocumentKind.TRADE_CONFIRMATION,
                            Document.reference_id == cast(Order.id, String),
                        )
                        .exists()
                    )
                    .limit(5000)
                )
            ).all()
        for order_id, user_id, at in orders:
            day = at.date()
            await self._create(
                user_id,
                DocumentKind.TRADE_CONFIRMATION,
                DocumentFormat.PDF,
                day,
                day,
                f"{DocumentKind.TRADE_CONFIRMATION.value}:{order_id}",
                reference_id=str(order_id),
            )
        return len(orders)

    async def enqueue_pending(
        self, older_than: datetime | None = None, *, only_new: bool = False
    ) -> int:
        """Re-enqueue PENDING documents: all created since ``older_than`` (``only_new``), or
        those untouched for ``retry_after`` (the sweeper)."""
        async with self._sm() as s:
            query = select(Document.id, Document.attempts).where(
                Document.status == DocumentStatus.PENDING
            )
            if only_new and older_than is not None:
                query = query.where(Document.created_at >= older_than, Document.attempts == 0)
            else:
                query = query.where(Document.updated_at < utcnow() - self.retry_after)
            rows = (await s.execute(query.limit(20_000))).all()
        for doc_id, attempts in rows:
            await self._enqueue(doc_id, attempts)
        return len(rows)

    # ---- generation ----

    async def generate(self, document_id: uuid.UUID) -> DocumentStatus | None:
        """Render and store one document; idempotent (a READY or FAILED one is left alone)."""
        async with self._sm.begin() as s:
            doc = (
                await s.execute(
                    update(Document)
                    .where(Document.id == document_id, Document.status == DocumentStatus.PENDING)
                    .values(attempts=Document.attempts + 1, updated_at=utcnow())
                    .returning(Document)
                )
            ).scalar_one_or_none()
            if doc is None:
                found = await s.get(Document, document_id)
                return None if found is None else found.status
            s.expunge(doc)
        try:
            async with self._sm() as s:
                body = await self._render(s, doc)
            key = f"documents/{doc.user_id}/{doc.id}.{doc.extension}"
            await self.store.put(key, body, doc.content_type)
        except Exception as exc:
            if doc.attempts < MAX_ATTEMPTS:
                raise
            log.exception("document failed", document_id=str(doc.id))
            async with self._sm.begin() as s:
                await s.execute(
                    update(Document)
                    .where(Document.id == doc.id, Document.status == DocumentStatus.PENDING)
                    .values(
                        status=DocumentStatus.FAILED,
                        failure_reason=f"{type(exc).__name__}: {exc}"[:500],
                        updated_at=utcnow(),
                    )
                )
            return DocumentStatus.FAILED
        told: list[NotificationView] = []
        async with self._sm.begin() as s:
            now = utcnow()
            ready = await s.execute(
                update(Document)
                .where(Document.id == doc.id, Document.status == DocumentStatus.PENDING)
                .values(
                    status=DocumentStatus.READY,
                    object_key=key,
                    size_bytes=len(body),
                    sha256=hashlib.sha256(body).hexdigest(),
                    failure_reason=None,
                    ready_at=now,
                    updated_at=now,
                )
                .returning(Document.id)
            )
            what = READY_NOTICE.get(doc.kind)
            if ready.first() is not None and what and self._notifier is not None:
                told = await record_notifications(
                    s, [statement_draft(doc.user_id, doc.id, what)], now=now
                )
        if self._notifier is not None:
            await self._notifier.announce(told)
        return DocumentStatus.READY

    async def _render(self, s: AsyncSession, doc: Document) -> bytes:
        if doc.kind is DocumentKind.MONTHLY_STATEMENT:
            data = await build_statement(
                s, doc.user_id, doc.period_start, doc.period_end, fields=self._fields
            )
            return statement_pdf(data) if doc.format is DocumentFormat.PDF else statement_csv(data)
        if doc.kind is DocumentKind.TRADE_CONFIRMATION:
            assert doc.reference_id is not None
            confirmation = await build_confirmation(s, doc.user_id, uuid.UUID(doc.reference_id))
            return confirmation_pdf(confirmation)
        if doc.kind is DocumentKind.TAX_1099:
            tax = await build_tax(s, doc.user_id, doc.period_start.year)
            if doc.format is DocumentFormat.PDF:
                return tax_pdf(tax, corrected=doc.corrected)
            return tax_csv(tax, corrected=doc.corrected)
        if doc.kind is DocumentKind.DATA_EXPORT:
            assert self._fields is not None, "a data export needs the field cipher"
            return export_zip(await build_export(s, self._fields, doc.user_id), doc.created_at)
        raise ValueError(f"no renderer for {doc.kind}")

    # ---- reads ----

    async def get(self, user_id: uuid.UUID, document_id: str) -> Document | None:
        """The user's document, or None (another user's document does not exist for them)."""
        try:
            ident = uuid.UUID(document_id)
        except ValueError:
            return None
        async with self._sm() as s:
            doc = await s.get(Document, ident)
        return doc if doc is not None and doc.user_id == user_id else None

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        kind: DocumentKind | None = None,
        year: int | None = None,
        first: int | None = None,
        after: str | None = None,
        may_lag: bool = False,
    ) -> DocumentPage:
        """Newest first; ``may_lag``: from a read replica when one is fit."""
        limit = pagination.page_size(first)
        query = select(Document).where(Document.user_id == user_id)
        if kind is not None:
            query = query.where(Document.kind == kind)
        if year is not None:
            query = query.where(
                or_(
                    extract("year", Document.period_start) == year,
                    extract("year", Document.period_end) == year,
                )
            )
        if after:
            at, ident = pagination.decode_cursor(after, uuid.UUID)
            query = query.where(tuple_(Document.created_at, Document.id) < tuple_(at, ident))
        query = query.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit + 1)
        async with (self._reads if may_lag else self._sm)() as s:
            items = list((await s.scalars(query)).all())
        return DocumentPage(items=items[:limit], has_next_page=len(items) > limit)

    def download_url(self, doc: Document) -> str | None:
        if doc.status is not DocumentStatus.READY or not doc.object_key:
            return None
        return self.store.download_url(doc.object_key, doc.filename, doc.content_type)


def _lit(value: object) -> Any:
    return literal(value)


def _enum(value: enum.Enum, name: str) -> Any:
    return cast(literal(value.value), ENUM(name=name, create_type=False))
