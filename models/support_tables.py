"""Support's tables: the help centre, tickets and their messages, canned replies, the staff
audit trail and attachments.

- `help_articles.search` is a generated `tsvector`: the title (weight A), keywords (B) and body
  (C) under the article's locale's dictionary (`spanish` for `es`, `english` otherwise), so
  stemming matches the language; a GIN index serves `@@`. `search_head` is the same for the
  title and keywords alone: what ranking reads (a few lexemes a row, so ranking thousands of
  matches of a common word stays fast). A trigram GIN index on
  `title || ' ' || keywords` (pg_trgm) serves the typo fallback (`<%`, word similarity).
- A ticket carries its SLA due times (computed from its priority when opened or re-prioritised)
  and the moments the clock compares them with (first staff reply, resolution).
- `support_messages.user_id` is the ticket owner's id (denormalised, the partitioning key), never
  the author's: internal notes are staff-only by the `internal` flag, filtered in every query.
- `support_audit` is append-only: one row per staff read of customer data, naming the ticket
  that justified it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base, uuid_pk

LOCALES = ("en", "es")
CATEGORIES = ("account", "funding", "orders", "market-hours", "fractional-shares", "taxes",
              "security")  # fmt: skip

HEAD_EXPRESSION = (
    "CASE WHEN locale = 'es' THEN "
    "setweight(to_tsvector('spanish'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('spanish'::regconfig, coalesce(keywords, '')), 'B') "
    "ELSE "
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(keywords, '')), 'B') END"
)
SEARCH_EXPRESSION = (
    "CASE WHEN locale = 'es' THEN "
    "setweight(to_tsvector('spanish'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('spanish'::regconfig, coalesce(keywords, '')), 'B') || "
    "setweight(to_tsvector('spanish'::regconfig, coalesce(body, '')), 'C') "
    "ELSE "
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(keywords, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'C') END"
)


class SupportCategory(enum.StrEnum):
    ACCOUNT = "ACCOUNT"
    FUNDING = "FUNDING"
    ORDERS = "ORDERS"
    TAXES = "TAXES"
    SECURITY = "SECURITY"
    OTHER = "OTHER"


class TicketStatus(enum.StrEnum):
    NEW = "NEW"
    OPEN = "OPEN"
    PENDING_CUSTOMER = "PENDING_CUSTOMER"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class TicketPriority(enum.StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class HelpArticle(Base):
    __tablename__ = "help_articles"

    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(String(500), default="")
    category: Mapped[str] = mapped_column(String(40))
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    not_helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(SEARCH_EXPRESSION, persisted=True))
    # Title and keywords only: small, so ranking thousands of matches stays cheap.
    search_head: Mapped[str] = mapped_column(TSVECTOR, Computed(HEAD_EXPRESSION, persisted=True))

    __table_args__ = (
        UniqueConstraint("slug", "locale", name="uq_help_articles_slug_locale"),
        Index("ix_help_articles_search", "search", postgresql_using="gin"),
        Index("ix_help_articles_listing", "locale", "category", "updated_at"),
    )


class HelpFeedback(Base):
    __tablename__ = "help_feedback"

    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("help_articles.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("article_id", "user_id", name="pk_help_feedback"),)


class SupportTicket(Base):
    __tablename__ = "support_tickets"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    subject: Mapped[str] = mapped_column(String(200))
    category: Mapped[SupportCategory] = mapped_column(
        Enum(SupportCategory, name="support_category", native_enum=True)
    )
    status: Mapped[TicketStatus] = mapped_column(
        Enum(TicketStatus, name="support_ticket_status", native_enum=True)
    )
    priority: Mapped[TicketPriority] = mapped_column(
        Enum(TicketPriority, name="support_ticket_priority", native_enum=True)
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("fund_transactions.id"))
    first_response_due_at: Mapped[datetime]
    resolution_due_at: Mapped[datetime]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    customer_read_at: Mapped[datetime | None]
    staff_read_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_support_tickets_user", "user_id", "created_at"),
        Index("ix_support_tickets_queue", "status", "created_at"),
        Index("ix_support_tickets_assignee", "assignee_id", "created_at"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
    )


class SupportMessage(Base):
    __tablename__ = "support_messages"

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_tickets.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID]  # the ticket owner (partitioning key), not the author
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    attachment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("support_attachments.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_support_messages_ticket", "ticket_id", "created_at"),)


class SupportAttachment(Base):
    """An attachment's metadata; its bytes in the object store (`object_key`), or in `data`
    where the process has no object store (`models.support_files`)."""

    __tablename__ = "support_attachments"

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_tickets.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID]
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    object_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("data IS NOT NULL OR object_key IS NOT NULL", name="bytes_somewhere"),
        Index("ix_support_attachments_ticket", "ticket_id"),
    )


class SupportMacro(Base):
    """A canned reply staff insert into a message."""

    __tablename__ = "support_macros"

    id: Mapped[uuid.UUID] = uuid_pk()
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("title", name="uq_support_macros_title"),)


class SupportAudit(Base):
    __tablename__ = "support_audit"

    id: Mapped[uuid.UUID] = uuid_pk()
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_tickets.id", ondelete="RESTRICT")
    )
    action: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_support_audit_subject", "subject_id", "created_at"),
        Index("ix_support_audit_ticket", "ticket_id", "created_at"),
    )


# Created by migration 0010 only where pg_trgm exists (the embedded pgserver wheel lacks it),
# so it is not declared above; tests/test_contract.py knows it by this name.
CONDITIONAL_INDEXES = frozenset({"ix_help_articles_trgm"})
