"""The typed view of an order (and of one fill) that the API shows and the notices carry.

``OrderView.of(order)`` is computed once per order, in one place: the remaining quantity (0 once
the order is final; None for an open notional order) and the average price (the exact
``filled_value / filled_quantity`` rounded half-even to ``AVERAGE_PRICE_STEP``), and every
amount without trailing zeros (``bourse.money.plain``). The resolvers build their GraphQL
objects from it; the settlement's notices carry it to ``orderUpdates`` through Redis as
``to_wire()`` (JSON-able strings) and ``from_wire`` reads it back into the same view, so a
listed order and a notified one are the same values by construction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bourse.money import plain, round_cash
from models.orders.tables import (
    FINAL_STATUSES,
    Fill,
    Order,
    OrderClass,
    OrderStatus,
    OrderSubType,
    Side,
    TimeInForce,
)

AVERAGE_PRICE_STEP = Decimal("0.000001")
ZERO = Decimal(0)


def _amount(value: Decimal | None) -> Decimal | None:
    return None if value is None else plain(value)


def _text(value: Decimal | datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _decimal(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(raw)


def _time(raw: Any) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


@dataclass(frozen=True, slots=True)
class OrderView:
    id: uuid.UUID
    user_id: uuid.UUID
    asset_id: str
    side: Side
    sub_type: OrderSubType
    time_in_force: TimeInForce
    quantity: Decimal | None
    notional: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    currency: str
    status: OrderStatus
    filled_quantity: Decimal
    filled_value: Decimal
    remaining_quantity: Decimal | None
    average_price: Decimal | None
    client_order_id: str | None
    reject_reason: str | None
    cancel_reason: str | None
    queued_until: datetime | None
    extended_hours: bool
    triggered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    executed_at: datetime | None
    trail_percent: Decimal | None = None
    trail_amount: Decimal | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    parent_id: uuid.UUID | None = None

    @classmethod
    def of(cls, o: Order) -> OrderView:
        filled = o.filled_quantity
        if o.status in FINAL_STATUSES:
            remaining: Decimal | None = ZERO
        else:
            remaining = None if o.quantity is None else o.quantity - filled
        average = (
            (o.filled_value / filled).quantize(AVERAGE_PRICE_STEP, rounding=ROUND_HALF_EVEN)
            if filled
            else None
        )
        return cls(
            id=o.id,
            user_id=o.user_id,
            asset_id=o.asset_id,
            side=o.side,
            sub_type=o.sub_type,
            time_in_force=o.time_in_force,
            quantity=_amount(o.quantity),
            notional=_amount(o.notional),
            price=_amount(o.price),
            stop_price=_amount(o.stop_price),
            currency=o.currency,
            status=o.status,
            filled_quantity=plain(filled),
            filled_value=plain(o.filled_value),
            remaining_quantity=_amount(remaining),
            average_price=_amount(average),
            client_order_id=o.client_order_id,
            reject_reason=o.reject_reason,
            cancel_reason=o.cancel_reason,
            queued_until=o.queued_until,
            extended_hours=bool(o.extended_hours),
            triggered_at=o.triggered_at,
            created_at=o.created_at,
            updated_at=o.updated_at or o.created_at,
            executed_at=o.executed_at,
            trail_percent=_amount(o.trail_percent),
            trail_amount=_amount(o.trail_amount),
            order_class=OrderClass(o.order_class or OrderClass.SIMPLE),
            parent_id=o.parent_id,
        )

    def to_wire(self) -> dict[str, Any]:
        """JSON-able: strings for UUIDs, enums, amounts and ISO 8601 times."""
        return {
            "id": str(self.id),
            "user_id": str(self.user_id),
            "asset_id": self.asset_id,
            "side": str(self.side),
            "sub_type": str(self.sub_type),
            "time_in_force": str(self.time_in_force),
            "quantity": _text(self.quantity),
            "notional": _text(self.notional),
            "price": _text(self.price),
            "stop_price": _text(self.stop_price),
            "currency": self.currency,
            "status": str(self.status),
            "filled_quantity": str(self.filled_quantity),
            "filled_value": str(self.filled_value),
            "remaining_quantity": _text(self.remaining_quantity),
            "average_price": _text(self.average_price),
            "client_order_id": self.client_order_id,
            "reject_reason": self.reject_reason,
            "cancel_reason": self.cancel_reason,
            "queued_until": _text(self.queued_until),
            "extended_hours": self.extended_hours,
            "triggered_at": _text(self.triggered_at),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "executed_at": _text(self.executed_at),
            "trail_percent": _text(self.trail_percent),
            "trail_amount": _text(self.trail_amount),
            "order_class": str(self.order_class),
            "parent_id": None if self.parent_id is None else str(self.parent_id),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> OrderView:
        """The view back from ``to_wire()`` (nothing is recomputed)."""
        created = datetime.fromisoformat(d["created_at"])
        return cls(
            id=uuid.UUID(d["id"]),
            user_id=uuid.UUID(d["user_id"]),
            asset_id=d["asset_id"],
            side=Side(d["side"]),
            sub_type=OrderSubType(d["sub_type"]),
            time_in_force=TimeInForce(d["time_in_force"]),
            quantity=_decimal(d.get("quantity")),
            notional=_decimal(d.get("notional")),
            price=_decimal(d.get("price")),
            stop_price=_decimal(d.get("stop_price")),
            currency=d["currency"],
            status=OrderStatus(d["status"]),
            filled_quantity=Decimal(d["filled_quantity"]),
            filled_value=Decimal(d["filled_value"]),
            remaining_quantity=_decimal(d.get("remaining_quantity")),
            average_price=_decimal(d.get("average_price")),
            client_order_id=d.get("client_order_id"),
            reject_reason=d.get("reject_reason"),
            cancel_reason=d.get("cancel_reason"),
            queued_until=_time(d.get("queued_until")),
            extended_hours=bool(d.get("extended_hours", False)),
            triggered_at=_time(d.get("triggered_at")),
            created_at=created,
            updated_at=_time(d.get("updated_at")) or created,
            executed_at=_time(d.get("executed_at")),
            trail_percent=_decimal(d.get("trail_percent")),
            trail_amount=_decimal(d.get("trail_amount")),
            order_class=OrderClass(d.get("order_class") or "SIMPLE"),
            parent_id=None if d.get("parent_id") is None else uuid.UUID(d["parent_id"]),
        )


@dataclass(frozen=True, slots=True)
class FillView:
    """One execution of an order, as the API shows it. ``value``: the cash moved, shown to the
    currency's minor unit (half-even: it only trims zeros); a notice does not carry it."""

    id: str
    quantity: Decimal
    price: Decimal
    timestamp: datetime
    value: Decimal | None = None

    @classmethod
    def of(cls, f: Fill) -> FillView:
        return cls(
            id=f.id,
            quantity=plain(f.quantity),
            price=plain(f.price),
            timestamp=f.executed_at,
            value=round_cash(f.value, f.currency, ROUND_HALF_EVEN),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "quantity": str(self.quantity),
            "price": str(self.price),
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> FillView:
        return cls(
            id=str(d["id"]),
            quantity=Decimal(d["quantity"]),
            price=Decimal(d["price"]),
            timestamp=datetime.fromisoformat(d["timestamp"]),
        )
