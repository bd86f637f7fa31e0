"""Orders' tables: the durable record of what users asked the exchange to do, and its fills.

An order's status changes only in the settlement consumer (``models/settlement.py``), from the
shard's events; ``filled_quantity`` and ``filled_value`` are the exact sums over its fills.
``order_replacements`` keeps each ``replaceOrder`` request until the shard's answer is settled.
A fill names both orders by their UUID; the liquidity provider's side (its orders live only in
the matching engine, ids ``lp-<n>``) has a NULL order id and a NULL user id.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base, uuid_pk
from models.ledger import AMOUNT, ZERO

LIQUIDITY_PROVIDER = "liquidity-provider"  # the user id the liquidity provider trades under


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderSubType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    DAY = "DAY"
    IOC = "IOC"
    FOK = "FOK"


class OrderClass(enum.StrEnum):
    """SIMPLE, or a contingent group (brackets, OCO, OTO: ``models.orders.linked``)."""

    SIMPLE = "SIMPLE"
    BRACKET = "BRACKET"
    OCO = "OCO"
    OTO = "OTO"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    EXECUTED = "EXECUTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED})
FINAL_STATUSES = frozenset(OrderStatus) - OPEN_STATUSES


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.symbol"))
    side: Mapped[Side] = mapped_column(Enum(Side, name="order_side", native_enum=True))
    sub_type: Mapped[OrderSubType] = mapped_column(
        Enum(OrderSubType, name="order_sub_type", native_enum=True)
    )
    time_in_force: Mapped[TimeInForce] = mapped_column(
        Enum(TimeInForce, name="time_in_force", native_enum=True)
    )
    quantity: Mapped[Decimal | None] = mapped_column(AMOUNT)
    notional: Mapped[Decimal | None] = mapped_column(AMOUNT)
    price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    # The current stop: a TRAILING_STOP's moves with the market (the shard's STOP_MOVED).
    stop_price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    trail_percent: Mapped[Decimal | None] = mapped_column(AMOUNT)
    trail_amount: Mapped[Decimal | None] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, name="order_status", native_enum=True), default=OrderStatus.PENDING
    )
    filled_quantity: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    # Exact sum of price x quantity over the fills (the average price's numerator).
    filled_value: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    reject_reason: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    hold_id: Mapped[uuid.UUID | None]
    queued_until: Mapped[datetime | None]
    # Limit orders only: may trade in the pre-market and after-hours sessions (DAY: until the
    # end of after-hours); see models.calendars.Session.
    extended_hours: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Contingent orders: the group's class on every row; a leg names the row whose command
    # carries it (a bracket's / OTO's entry, an OCO's take-profit), which has none.
    order_class: Mapped[OrderClass] = mapped_column(
        Enum(OrderClass, name="order_class", native_enum=True),
        default=OrderClass.SIMPLE,
        server_default=OrderClass.SIMPLE.value,
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    cancel_requested_at: Mapped[datetime | None]
    triggered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    executed_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_orders_client_order_id",
            "user_id",
            "client_order_id",
            unique=True,
            postgresql_where=text("client_order_id IS NOT NULL"),
        ),
        Index("ix_orders_user_created", "user_id", "created_at", "id"),
        Index("ix_orders_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
    )


class ReplaceStatus(enum.StrEnum):
    PENDING = "PENDING"
    REPLACED = "REPLACED"
    REJECTED = "REJECTED"


class OrderReplacement(Base):
    """One ``replaceOrder`` request: the new terms as the user gave them (the order shows
    these once the shard's REPLACED is settled). ``id`` is the engine's replace id; at most
    one is PENDING per order."""

    __tablename__ = "order_replacements"

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"))
    user_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)  # the new total
    price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    stop_price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    time_in_force: Mapped[TimeInForce] = mapped_column(
        Enum(TimeInForce, name="time_in_force", native_enum=True)
    )
    trail_percent: Mapped[Decimal | None] = mapped_column(AMOUNT)
    trail_amount: Mapped[Decimal | None] = mapped_column(AMOUNT)
    status: Mapped[str] = mapped_column(String(16), default=ReplaceStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(32))
    kept_priority: Mapped[bool | None] = mapped_column(Boolean)
    # What the request added to the order's hold (0 when the hold already covered it).
    hold_added: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_order_replacements_pending",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index("ix_order_replacements_order", "order_id", "created_at"),
    )


class Fill(Base):
    __tablename__ = "fills"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)  # the engine's fill id
    asset_id: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(AMOUNT)
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    value: Mapped[Decimal] = mapped_column(AMOUNT)  # the cash moved
    currency: Mapped[str] = mapped_column(String(3))
    # Our orders' ids; None for the liquidity provider's side (its orders are the engine's).
    maker_order_id: Mapped[uuid.UUID | None]
    taker_order_id: Mapped[uuid.UUID | None]
    maker_user_id: Mapped[uuid.UUID | None]
    taker_user_id: Mapped[uuid.UUID | None]
    taker_side: Mapped[Side] = mapped_column(Enum(Side, name="order_side", native_enum=True))
    executed_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_fills_maker_order_id", "maker_order_id"),
        Index("ix_fills_taker_order_id", "taker_order_id"),
        Index("ix_fills_asset_executed", "asset_id", "executed_at"),
    )


def utc_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC) if ns else utcnow()
