"""The notification system's tables (migration 0014); the rules that change them live beside
(``actions``, ``preferences``, ``alerts``).

- ``notifications``: the inbox, one row per thing a user was told. ``dedupe_key`` is unique:
  every producer derives it from its source event (``order:<id>:FILL``, ``alert:<id>:<n>``,
  ``funds:<id>:COMPLETED`` …) and inserts ``ON CONFLICT DO NOTHING``, so a replayed settlement
  batch, a retried job or two evaluators racing never make a second row. ``dispatched_at`` is
  set once the delivery fan-out has been planned (the sweeper re-plans rows left without it).
- ``price_alerts``: ``fired`` counts the alert's firings (the arming it is in); a firing is a
  conditional UPDATE on (id, status ACTIVE, fired = n, armed_at <= now), so exactly one claimant
  wins per arming. A re-arming alert stays ACTIVE with ``armed_at`` = the end of its cool-down.
- ``notification_preferences``: one row per (user, kind) that differs from the defaults, plus
  the quiet hours on ``notification_settings`` (one row per user).
- ``push_subscriptions``: Web Push endpoints (unique per endpoint), disabled on a 410.
- ``notification_deliveries``: one row per (notification, channel), unique: the channel's job
  sends only while the row is not SENT, and records attempts and the last error.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base, uuid_pk
from models.ledger import AMOUNT


class Kind(enum.StrEnum):
    PRICE_ALERT = "PRICE_ALERT"
    ORDER = "ORDER"
    FUNDS = "FUNDS"
    SECURITY = "SECURITY"
    STATEMENT = "STATEMENT"
    SUPPORT = "SUPPORT"
    CORPORATE_ACTION = "CORPORATE_ACTION"
    COMPLIANCE = "COMPLIANCE"


class Channel(enum.StrEnum):
    IN_APP = "IN_APP"
    EMAIL = "EMAIL"
    PUSH = "PUSH"


class AlertCondition(enum.StrEnum):
    PRICE_ABOVE = "PRICE_ABOVE"
    PRICE_BELOW = "PRICE_BELOW"
    PERCENT_UP = "PERCENT_UP"
    PERCENT_DOWN = "PERCENT_DOWN"


class AlertStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    TRIGGERED = "TRIGGERED"
    CANCELLED = "CANCELLED"


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"  # gave up after the last attempt (or the endpoint is gone)
    SKIPPED = "SKIPPED"  # nothing to send to (no push subscription, no email address)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(Enum(Kind, name="notification_kind", native_enum=True))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(String(16))
    order_id: Mapped[uuid.UUID | None]
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)  # not held by quiet hours
    # False: its producer sends its own email (support replies, only to an offline customer;
    # skipped recurring runs), so the email channel is not planned for it.
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        Index("ix_notifications_user", "user_id", "created_at", "id"),
        Index("ix_notifications_unread", "user_id", postgresql_where=text("read_at IS NULL")),
        Index(
            "ix_notifications_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )


class PriceAlert(Base):
    __tablename__ = "price_alerts"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    condition: Mapped[AlertCondition] = mapped_column(
        Enum(AlertCondition, name="alert_condition", native_enum=True)
    )
    threshold: Mapped[Decimal] = mapped_column(AMOUNT)  # a price, or a percentage
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    cooldown_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    status: Mapped[AlertStatus] = mapped_column(
        Enum(AlertStatus, name="alert_status", native_enum=True), default=AlertStatus.ACTIVE
    )
    fired: Mapped[int] = mapped_column(Integer, default=0)  # firings so far: the arming is n+1
    armed_at: Mapped[datetime]  # may fire from this moment (creation, or the cool-down's end)
    triggered_at: Mapped[datetime | None]  # the latest firing
    triggered_price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_price_alerts_user", "user_id", "created_at"),
        Index("ix_price_alerts_active", "asset_id", postgresql_where=text("status = 'ACTIVE'")),
    )


class NotificationSettings(Base):
    """Per user: quiet hours (local times in ``timezone``; start == end: none)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    quiet_hours_start: Mapped[int | None] = mapped_column(SmallInteger)  # minutes after 00:00
    quiet_hours_end: Mapped[int | None] = mapped_column(SmallInteger)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationPreference(Base):
    """Per user and kind: which channels; absent rows mean the defaults."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(Enum(Kind, name="notification_kind", native_enum=True))
    in_app: Mapped[bool] = mapped_column(Boolean)
    email: Mapped[bool] = mapped_column(Boolean)
    push: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("user_id", "kind", name="pk_notification_preferences"),)


class PushSubscription(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]  # the push service answered 404/410: gone

    __table_args__ = (
        UniqueConstraint("endpoint", name="uq_push_subscriptions_endpoint"),
        Index("ix_push_subscriptions_user", "user_id"),
    )


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE")
    )
    channel: Mapped[Channel] = mapped_column(
        Enum(Channel, name="notification_channel", native_enum=True)
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="delivery_status", native_enum=True),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None]  # quiet hours: not sent before this moment
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint(
            "notification_id", "channel", name="uq_notification_deliveries_notification_id"
        ),
    )
