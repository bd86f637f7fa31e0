"""GraphQL types of orders and trading (API.md section 5)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from models.orders import Fill as FillModel
from models.orders import Order as OrderModel
from models.orders import OrderClass as OrderClassModel
from models.orders import OrderStatus as OrderStatusModel
from models.orders import OrderSubType as OrderSubTypeModel
from models.orders import Side
from models.orders import TimeInForce as TimeInForceModel
from models.orders.view import FillView, OrderView
from resolvers.context import Context
from resolvers.errors import UserError
from resolvers.funds.types import AmountInput
from resolvers.relay import PageInfo

OrderType = strawberry.enum(Side, name="OrderType", description="BUY or SELL.")
OrderSubType = strawberry.enum(OrderSubTypeModel, name="OrderSubType")
TimeInForce = strawberry.enum(TimeInForceModel, name="TimeInForce")
OrderStatus = strawberry.enum(OrderStatusModel, name="OrderStatus")
OrderClass = strawberry.enum(
    OrderClassModel,
    name="OrderClass",
    description="SIMPLE, or contingent: BRACKET (an entry with a take-profit and a stop-loss "
    "that become active as it fills, one-cancels-other), OCO (a take-profit and a stop-loss, "
    "one-cancels-other), OTO (an entry with one exit).",
)


@strawberry.enum(description="What happened to an order (orderUpdates).")
class OrderEvent(enum.Enum):
    ACCEPTED = "ACCEPTED"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    TRIGGERED = "TRIGGERED"
    REPLACED = "REPLACED"
    ACTIVATED = "ACTIVATED"  # a bracket's / OTO's exit became active, or grew, as its entry filled
    REDUCED = "REDUCED"  # a linked exit shrank because its sibling filled (same shares)
    SPLIT_ADJUSTED = "SPLIT_ADJUSTED"  # a stock split changed its quantity and prices


@strawberry.type(description="One execution of an order at one price.")
class Fill:
    id: strawberry.ID
    quantity: Decimal
    price: Decimal
    timestamp: datetime
    value: Decimal | None = strawberry.field(
        default=None, description="Cash moved: price x quantity, rounded down to the cent."
    )

    @classmethod
    def from_view(cls, f: FillView) -> Fill:
        return cls(
            id=strawberry.ID(f.id),
            quantity=f.quantity,
            price=f.price,
            timestamp=f.timestamp,
            value=f.value,
        )

    @classmethod
    def from_model(cls, f: FillModel) -> Fill:
        return cls.from_view(FillView.of(f))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Fill:
        """From a notice's fill (``FillView.to_wire()``)."""
        return cls.from_view(FillView.from_wire(doc))


@strawberry.type(name="Order")
class OrderNode:
    id: strawberry.ID
    asset_id: str
    order_type: Side
    order_sub_type: OrderSubTypeModel
    quantity: Decimal | None = strawberry.field(description="Null for a notional market buy.")
    notional: Decimal | None
    price: Decimal | None = strawberry.field(description="The limit price (LIMIT, STOP_LIMIT).")
    stop_price: Decimal | None = strawberry.field(
        description="The trigger; a TRAILING_STOP's current stop, which follows the market."
    )
    time_in_force: TimeInForceModel
    status: OrderStatusModel
    filled_quantity: Decimal
    remaining_quantity: Decimal | None = strawberry.field(
        description="0 once the order is final; null for an open notional order."
    )
    average_price: Decimal | None
    filled_value: Decimal = strawberry.field(description="Sum of price x quantity of the fills.")
    currency: str
    client_order_id: str | None
    reject_reason: str | None
    cancel_reason: str | None = strawberry.field(
        description="USER, IOC_REMAINDER, FOK_UNFILLABLE, SELF_TRADE, COLLAR, NO_LIQUIDITY, ..."
    )
    queued_until: datetime | None = strawberry.field(
        description="Placed while the market was closed: sent to the exchange at this time."
    )
    extended_hours: bool = strawberry.field(
        description="A limit order that may also trade pre-market (04:00-09:30 New York) and "
        "after-hours (to 20:00; 17:00 on early-close days); a DAY one expires at 20:00."
    )
    triggered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    executed_at: datetime | None
    trail_percent: Decimal | None = strawberry.field(
        default=None, description="A TRAILING_STOP's trail as a percentage of the water mark."
    )
    trail_amount: Decimal | None = strawberry.field(
        default=None, description="A TRAILING_STOP's trail as a price distance."
    )
    order_class: OrderClassModel = strawberry.field(
        default=OrderClassModel.SIMPLE,
        description="SIMPLE, or the contingent group this order belongs to.",
    )
    parent_order_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A leg's order: the bracket's / OTO's entry, the OCO's take-profit.",
    )

    @strawberry.field(
        description="A contingent order's legs (a bracket's take-profit and stop-loss, an OCO's "
        "stop-loss); empty for a simple order or a leg. A bracket's legs wait (PENDING) until "
        "the entry fills, then cover what it filled."
    )
    async def legs(self, info: Info[Context, Any]) -> list[OrderNode]:
        if self.order_class is OrderClassModel.SIMPLE or self.parent_order_id is not None:
            return []
        found = await info.context.loaders.order_legs.load(uuid.UUID(str(self.id)))
        return [OrderNode.from_model(o) for o in found]

    @strawberry.field(description="The order's fills, oldest first.")
    async def fills(self, info: Info[Context, Any]) -> list[Fill]:
        found = await info.context.loaders.order_fills.load(uuid.UUID(str(self.id)))
        return [Fill.from_model(f) for f in found]

    @classmethod
    def from_view(cls, v: OrderView) -> OrderNode:
        return cls(
            id=strawberry.ID(str(v.id)),
            asset_id=v.asset_id,
            order_type=v.side,
            order_sub_type=v.sub_type,
            quantity=v.quantity,
            notional=v.notional,
            price=v.price,
            stop_price=v.stop_price,
            time_in_force=v.time_in_force,
            status=v.status,
            filled_quantity=v.filled_quantity,
            remaining_quantity=v.remaining_quantity,
            average_price=v.average_price,
            filled_value=v.filled_value,
            currency=v.currency,
            client_order_id=v.client_order_id,
            reject_reason=v.reject_reason,
            cancel_reason=v.cancel_reason,
            queued_until=v.queued_until,
            extended_hours=v.extended_hours,
            triggered_at=v.triggered_at,
            created_at=v.created_at,
            updated_at=v.updated_at,
            executed_at=v.executed_at,
            trail_percent=v.trail_percent,
            trail_amount=v.trail_amount,
            order_class=v.order_class,
            parent_order_id=None if v.parent_id is None else strawberry.ID(str(v.parent_id)),
        )

    @classmethod
    def from_model(cls, o: OrderModel) -> OrderNode:
        return cls.from_view(OrderView.of(o))

    @classmethod
    def from_snapshot(cls, d: dict[str, Any]) -> OrderNode:
        """From a notice's order (``OrderView.to_wire()``): read back, nothing recomputed."""
        return cls.from_view(OrderView.from_wire(d))


@strawberry.type
class OrderEdge:
    cursor: str
    node: OrderNode


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


@strawberry.input(description="A bracket's, OTO's or OCO's take-profit: a limit order.")
class TakeProfitInput:
    price: AmountInput | None = None


@strawberry.input(
    description="A bracket's, OTO's or OCO's stop-loss: a stop order (a stop-limit with `price`)."
)
class StopLossInput:
    stop_price: AmountInput | None = None
    price: AmountInput | None = None


@strawberry.input
class PlaceOrderInput:
    asset_id: str
    order_type: Side
    order_sub_type: OrderSubTypeModel
    quantity: AmountInput | None = strawberry.field(
        default=None, description='Shares, e.g. "0.5" (fractional where the asset allows).'
    )
    notional: AmountInput | None = strawberry.field(
        default=None, description='A cash amount (market orders only), e.g. "100".'
    )
    price: AmountInput | None = None
    stop_price: AmountInput | None = None
    time_in_force: TimeInForceModel = TimeInForceModel.GTC
    client_order_id: str | None = strawberry.field(
        default=None, description="Your id for the order, unique per user (1-64 characters)."
    )
    extended_hours: bool | None = strawberry.field(
        default=None,
        description="LIMIT orders only (else INVALID_ORDER_TYPE): also trade in the pre-market "
        "and after-hours sessions of US equities. Without it, an order placed outside the "
        "regular session waits for the open.",
    )
    trail_percent: AmountInput | None = strawberry.field(
        default=None,
        description='TRAILING_STOP: the stop trails the best price by this percentage, e.g. "5".',
    )
    trail_amount: AmountInput | None = strawberry.field(
        default=None,
        description='TRAILING_STOP: the stop trails the best price by this amount, e.g. "2.50".',
    )
    order_class: OrderClassModel = strawberry.field(
        default=OrderClassModel.SIMPLE,
        description="BRACKET: this BUY (LIMIT or MARKET) plus `takeProfit` and `stopLoss`, "
        "which sell what it fills; OTO: with one of them; OCO: this LIMIT is the take-profit "
        "(`takeProfit.price`) and `stopLoss` the other exit. Else INVALID_ORDER_CLASS.",
    )
    take_profit: TakeProfitInput | None = None
    stop_loss: StopLossInput | None = None


@strawberry.input(
    description="New terms for an open order; a field left out keeps its value. `quantity` is "
    "the new total (filled shares included). The order keeps its time priority only when the "
    "quantity goes down and nothing else changes."
)
class ReplaceOrderInput:
    quantity: AmountInput | None = None
    price: AmountInput | None = None
    stop_price: AmountInput | None = None
    time_in_force: TimeInForceModel | None = None
    trail_percent: AmountInput | None = None
    trail_amount: AmountInput | None = None


@strawberry.type
class OrderPayload:
    order: OrderNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderUpdate:
    event: OrderEvent
    order: OrderNode
    fill: Fill | None = None
    cursor: str = strawberry.field(
        default="",
        description="Increases per user; `orderUpdates(after: cursor)` resumes after this event.",
    )


@strawberry.input
class ConfigureLiquidityInput:
    asset_id: str
    enabled: bool = True
    spread_bps: int | None = strawberry.field(
        default=None, description="Best bid/ask at reference -/+ spread/2 (default: settings)."
    )
    levels: int | None = None
    quote_notional: AmountInput | None = strawberry.field(
        default=None, description="Size of each level in the asset's currency."
    )


@strawberry.type
class LiquidityConfigNode:
    asset_id: str
    enabled: bool
    spread_bps: int
    levels: int
    quote_notional: Decimal


@strawberry.type
class ConfigureLiquidityPayload:
    config: LiquidityConfigNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
