"""GraphQL types of documents and corporate actions (API.md section 9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import strawberry

from models.corporate_actions import CorporateAction
from models.corporate_actions import CorporateActionKind as CorporateActionKindModel
from models.corporate_actions import CorporateActionStatus as CorporateActionStatusModel
from models.documents import Document
from models.documents import DocumentFormat as DocumentFormatModel
from models.documents import DocumentKind as DocumentKindModel
from models.documents import DocumentStatus as DocumentStatusModel
from resolvers.errors import UserError
from resolvers.funds.types import AmountInput
from resolvers.relay import PageInfo

DocumentKind = strawberry.enum(DocumentKindModel, name="DocumentKind")
DocumentFormat = strawberry.enum(DocumentFormatModel, name="DocumentFormat")
DocumentStatus = strawberry.enum(DocumentStatusModel, name="DocumentStatus")
CorporateActionKind = strawberry.enum(CorporateActionKindModel, name="CorporateActionKind")
CorporateActionStatus = strawberry.enum(CorporateActionStatusModel, name="CorporateActionStatus")


def midnight(day: date | None) -> datetime | None:
    """A date shown as a DateTime: the start of that UTC day."""
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)


def day_of(value: datetime | None) -> date | None:
    """A DateTime argument taken as the calendar day it names (in its own offset)."""
    return None if value is None else value.date()


@strawberry.type(name="Document")
class DocumentNode:
    id: strawberry.ID
    kind: DocumentKindModel
    format: DocumentFormatModel
    status: DocumentStatusModel
    period_start: datetime = strawberry.field(description="Midnight UTC of the first day.")
    period_end: datetime = strawberry.field(
        description="Midnight UTC of the last day (the period includes that whole day)."
    )
    created_at: datetime
    ready_at: datetime | None
    corrected: bool = strawberry.field(description="A corrected version superseding another.")
    failure_reason: str | None
    order_id: strawberry.ID | None = strawberry.field(description="A confirmation's order.")
    size_bytes: int | None
    download_url: str | None = strawberry.field(
        description="A short-lived presigned URL (null until READY); ask again when it expires."
    )

    @classmethod
    def from_model(cls, doc: Document, url: str | None) -> DocumentNode:
        start, end = midnight(doc.period_start), midnight(doc.period_end)
        assert start is not None
        assert end is not None
        return cls(
            id=strawberry.ID(str(doc.id)),
            kind=doc.kind,
            format=doc.format,
            status=doc.status,
            period_start=start,
            period_end=end,
            created_at=doc.created_at,
            ready_at=doc.ready_at,
            corrected=doc.corrected,
            failure_reason=doc.failure_reason,
            order_id=strawberry.ID(doc.reference_id) if doc.reference_id else None,
            size_bytes=doc.size_bytes,
            download_url=url,
        )


@strawberry.type
class DocumentEdge:
    cursor: str
    node: DocumentNode


@strawberry.type
class DocumentConnection:
    edges: list[DocumentEdge]
    page_info: PageInfo


@strawberry.input
class RequestStatementInput:
    period_start: datetime | None
    period_end: datetime | None
    format: DocumentFormatModel = DocumentFormatModel.PDF


@strawberry.input
class RequestTaxDocumentInput:
    year: int | None
    format: DocumentFormatModel = DocumentFormatModel.PDF


@strawberry.type
class DocumentPayload:
    document: DocumentNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="CorporateAction")
class CorporateActionNode:
    id: strawberry.ID
    kind: CorporateActionKindModel
    asset_id: str
    status: CorporateActionStatusModel
    currency: str
    amount_per_share: Decimal | None
    ex_date: datetime | None
    record_date: datetime | None
    pay_date: datetime | None
    numerator: int | None
    denominator: int | None
    effective_date: datetime
    holders: int = strawberry.field(description="Accounts credited or adjusted.")
    total_cash: Decimal = strawberry.field(description="Dividends, or cash in lieu, paid.")
    created_at: datetime
    applied_at: datetime | None

    @classmethod
    def from_model(cls, a: CorporateAction) -> CorporateActionNode:
        effective = midnight(a.effective_date)
        assert effective is not None
        return cls(
            id=strawberry.ID(str(a.id)),
            kind=a.kind,
            asset_id=a.asset_id,
            status=a.status,
            currency=a.currency,
            amount_per_share=a.amount_per_share.normalize() if a.amount_per_share else None,
            ex_date=midnight(a.ex_date),
            record_date=midnight(a.record_date),
            pay_date=midnight(a.pay_date),
            numerator=a.numerator,
            denominator=a.denominator,
            effective_date=effective,
            holders=a.holders,
            total_cash=a.total_cash.quantize(Decimal("0.01")),
            created_at=a.created_at,
            applied_at=a.applied_at,
        )


@strawberry.input
class RecordCashDividendInput:
    asset_id: str
    amount_per_share: AmountInput
    ex_date: datetime | None
    record_date: datetime | None
    pay_date: datetime | None


@strawberry.input
class RecordStockSplitInput:
    asset_id: str
    numerator: int
    denominator: int
    effective_date: datetime | None


@strawberry.type
class CorporateActionPayload:
    corporate_action: CorporateActionNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
