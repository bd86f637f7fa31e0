"""The portfolio tables: portfolios (the default one and tracked ones), the assets of tracked
portfolios, external flows (for the time-weighted return) and stock transfers in.

The rules that change them are in `models.portfolios` (portfolios and their assets) and
`models.transfers` (ACATS transfers in); valuation reads them in `models.valuation`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base, uuid_pk
from models.ledger import AMOUNT

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_INPUT_DECIMALS = 8  # quantities and prices typed by people (tracked portfolios)
DEFAULT_NAME = "Brokerage"
DEFAULT_DESCRIPTION = "Your brokerage account: holdings from your trades and transfers."
LOCK_NAMESPACE = 0x706F7274  # "port": advisory locks of one user's portfolio changes


class Portfolio(Base):
    __tablename__ = "portfolios"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    description: Mapped[str | None] = mapped_column(String(MAX_DESCRIPTION))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_portfolios_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index("ix_portfolios_user", "user_id", "created_at"),
    )


class PortfolioAsset(Base):
    """A tracked portfolio's holding (never the default portfolio's: those are positions)."""

    __tablename__ = "portfolio_assets"

    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    user_id: Mapped[uuid.UUID]  # denormalised (partitioning key)
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT)  # sum of quantity * purchase price
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("portfolio_id", "asset_id", name="pk_portfolio_assets"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cost_basis >= 0", name="cost_nonnegative"),
    )


class PortfolioFlow(Base):
    """An external flow into (+) or out of (-) a portfolio other than a deposit or withdrawal,
    valued when it happened, in the user's base currency then."""

    __tablename__ = "portfolio_flows"

    id: Mapped[uuid.UUID] = uuid_pk()
    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(32))  # TRANSFER_IN, ASSET_ADDED, ASSET_REMOVED
    amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_portfolio_flows_portfolio_at", "portfolio_id", "at"),)


class StockTransfer(Base):
    """An incoming ACATS transfer booked by staff."""

    __tablename__ = "stock_transfers"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT)  # total, in the asset's currency
    acquired_at: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    journal_entry_id: Mapped[uuid.UUID]
    lot_id: Mapped[uuid.UUID]
    recorded_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_stock_transfers_idempotency"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cost_basis >= 0", name="cost_nonnegative"),
    )
