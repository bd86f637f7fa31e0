"""The ``documents`` table: one row per document a user can download, with its lifecycle.

PENDING (the row exists, a job will render and store it) → READY (the object is in S3: the row
turns READY only after the object was written, in one conditional UPDATE) or FAILED (with a
reason, after the last attempt). ``natural_key`` is unique per user, so asking twice (or a
cron and a request racing) makes one document: a monthly statement's key is its kind, format
and period; a confirmation's its order; a 1099's its year and version.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base, uuid_pk


class DocumentKind(enum.StrEnum):
    MONTHLY_STATEMENT = "MONTHLY_STATEMENT"
    TRADE_CONFIRMATION = "TRADE_CONFIRMATION"
    TAX_1099 = "TAX_1099"
    DATA_EXPORT = "DATA_EXPORT"


class DocumentFormat(enum.StrEnum):
    PDF = "PDF"
    CSV = "CSV"
    ZIP = "ZIP"


class DocumentStatus(enum.StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


CONTENT_TYPES = {
    DocumentFormat.PDF: "application/pdf",
    DocumentFormat.CSV: "text/csv",
    DocumentFormat.ZIP: "application/zip",
}


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[DocumentKind] = mapped_column(
        Enum(DocumentKind, name="document_kind", native_enum=True)
    )
    format: Mapped[DocumentFormat] = mapped_column(
        Enum(DocumentFormat, name="document_format", native_enum=True)
    )
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    reference_id: Mapped[str | None] = mapped_column(String(64))  # the order of a confirmation
    natural_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[DocumentStatus] = mapped_column(
        Enum(DocumentStatus, name="document_status", native_enum=True)
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    object_key: Mapped[str | None] = mapped_column(String(300))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # A digest of the figures (tax documents): a re-issue whose figures differ is a correction.
    content_digest: Mapped[str | None] = mapped_column(String(64))
    corrected: Mapped[bool] = mapped_column(Boolean, default=False)
    supersedes_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("user_id", "natural_key", name="uq_documents_natural_key"),
        Index("ix_documents_user_created", "user_id", "created_at", "id"),
        Index("ix_documents_pending", "status", "updated_at"),
    )

    @property
    def extension(self) -> str:
        return self.format.value.lower()

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        kind = self.kind.value.lower().replace("_", "-")
        return f"bourse-{kind}-{self.period_start}.{self.extension}"
