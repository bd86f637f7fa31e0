"""Webhook tables: endpoints, the event outbox and one delivery row per (endpoint, event).

An endpoint belongs to one customer (`user_id`: whose events it receives) and was created by
one credential: the customer's signed-in session (`api_key_id` and `app_id` both null), one of
their API keys (`api_key_id`) or a partner app acting for them under their consent (`app_id`).
Its signing secret is sealed (`secret_sealed`, models/envelope.py): it must be read back to
sign, so it cannot be kept as a digest as credentials are.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk

SECRET_COLUMN = "webhook_endpoints.secret"


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"  # due at next_attempt_at (being sent while its lease runs)
    DELIVERED = "DELIVERED"  # the receiver answered 2xx
    FAILED = "FAILED"  # gave up after the last attempt (replay sends it again)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE")
    )
    app_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("partner_apps.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Set when a delivery gave up after its last attempt; cleared by the next success.
    failing_since: Mapped[datetime | None]

    __table_args__ = (Index("ix_webhook_endpoints_user", "user_id", "created_at"),)


class WebhookEvent(Base):
    """An event for one customer, written in the transaction of the fact it reports (a
    settlement batch, a funds transaction's outcome), only while the customer has an enabled
    endpoint. `body` is the exact JSON every delivery of it POSTs."""

    __tablename__ = "webhook_events"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_webhook_events_created", "created_at"),)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = uuid_pk()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="webhook_delivery_status", native_enum=True)
    )
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]  # due then (None: delivered or given up)
    # A sender's lease while its POST is in flight: no other sender claims the row until then
    # (a sender that dies mid-send leaves it to be claimed again once the lease runs out).
    sending_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    response_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at", "id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'PENDING'"),
        ),
    )
