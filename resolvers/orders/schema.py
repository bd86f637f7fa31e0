"""Orders and trading: placeOrder, replaceOrder, cancelOrder, order, orders, orderUpdates."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from opentelemetry.trace import SpanKind
from strawberry.types import Info

from bourse import tracing
from bourse.keys import user_channel
from models.errors import DomainError, ErrorCode
from models.funds import parse_amount
from models.orders import FINAL_STATUSES, PlaceOrderRequest, ReplaceOrderRequest, encode_cursor
from models.orders import OrderStatus as OrderStatusModel
from models.orders import events as order_events
from models.orders.linked import StopLoss, TakeProfit
from models.services import Services
from resolvers.calls import SignedIn, query
from resolvers.context import Context
from resolvers.errors import ApiError, bad_input, user_errors
from resolvers.hub import BoundedQueueSubscriber, SubscriberOverflow
from resolvers.live_session import SessionWatch
from resolvers.mutations import mutation
from resolvers.orders.types import (
    ConfigureLiquidityInput,
    ConfigureLiquidityPayload,
    Fill,
    LiquidityConfigNode,
    OrderConnection,
    OrderEdge,
    OrderEvent,
    OrderNode,
    OrderPayload,
    OrderUpdate,
    PlaceOrderInput,
    ReplaceOrderInput,
)
from resolvers.permissions import IsAdmin, IsAuthenticated, MayMoveMoney
from resolvers.relay import page_info

OrdersInfo = Info[Context, Any]

CANCEL_PENDING = DomainError.one(
    ErrorCode.CANCEL_PENDING,
    "The exchange has not confirmed the cancel yet. It is recorded and will apply when the "
    "exchange answers (the order may still fill first); watch the order's updates.",
    "id",
)


@strawberry.type
class OrdersQuery:
    @query(IsAuthenticated, description="One of your orders; null otherwise.")
    async def order(self, call: SignedIn, id: strawberry.ID) -> OrderNode | None:
        found = await call.services.orders.get(call.principal.user_id, str(id))
        return OrderNode.from_model(found) if found else None

    @query(
        IsAuthenticated,
        description="Your orders, newest first. `first` is capped at 100.",
    )
    async def orders(
        self,
        call: SignedIn,
        status: OrderStatusModel | None = None,
        asset_id: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> OrderConnection:
        try:
            page = await call.services.orders.page(
                call.principal.user_id,
                status=status,
                asset_id=asset_id,
                start=start_date,
                end=end_date,
                first=first,
                after=after,
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            OrderEdge(cursor=encode_cursor(o), node=OrderNode.from_model(o)) for o in page.items
        ]
        return OrderConnection(
            edges=edges,
            page_info=page_info(edges, page.has_next_page),
        )


PLACE_ORDER_ERRORS = (
    ErrorCode.UNKNOWN_ASSET,
    ErrorCode.ASSET_NOT_TRADABLE,
    ErrorCode.INVALID_QUANTITY,
    ErrorCode.INVALID_PRICE,
    ErrorCode.INSUFFICIENT_BUYING_POWER,
    ErrorCode.INSUFFICIENT_SHARES,
    ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
    ErrorCode.MARKET_CLOSED,
    ErrorCode.INVALID_ORDER_TYPE,
    ErrorCode.INVALID_ORDER_CLASS,
    ErrorCode.INVALID_INPUT,
    ErrorCode.KYC_REQUIRED,
)


@strawberry.type
class OrdersMutation:
    @mutation(MayMoveMoney, errors=PLACE_ORDER_ERRORS, payload=OrderPayload)
    async def place_order(self, call: SignedIn, input: PlaceOrderInput) -> OrderPayload:
        order = await call.services.orders.place(
            call.principal.user_id,
            PlaceOrderRequest(
                asset_id=input.asset_id,
                side=input.order_type,
                sub_type=input.order_sub_type,
                time_in_force=input.time_in_force,
                quantity=input.quantity,
                notional=input.notional,
                price=input.price,
                stop_price=input.stop_price,
                client_order_id=input.client_order_id,
                trail_percent=input.trail_percent,
                trail_amount=input.trail_amount,
                extended_hours=bool(input.extended_hours),
                order_class=input.order_class,
            ),
            take_profit=None
            if input.take_profit is None
            else TakeProfit(price=input.take_profit.price),
            stop_loss=None
            if input.stop_loss is None
            else StopLoss(stop_price=input.stop_loss.stop_price, price=input.stop_loss.price),
        )
        return OrderPayload(order=OrderNode.from_model(order))

    @mutation(
        MayMoveMoney,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.NOT_CANCELLABLE, *PLACE_ORDER_ERRORS),
        payload=OrderPayload,
        description="Replace an open order's quantity, prices or time in force, atomically in "
        "the exchange (a partly filled order: its remaining quantity). The order keeps its "
        "time priority only when the quantity goes down and nothing else changes. An order "
        "that filled or ended meanwhile: NOT_CANCELLABLE, and nothing changes. Answers with "
        "the order once replaced (or after a short wait: REPLACED then follows on "
        "orderUpdates).",
    )
    async def replace_order(
        self, call: SignedIn, id: strawberry.ID, input: ReplaceOrderInput
    ) -> OrderPayload:
        order = await call.services.orders.replace(
            call.principal.user_id,
            str(id),
            ReplaceOrderRequest(
                quantity=input.quantity,
                price=input.price,
                stop_price=input.stop_price,
                time_in_force=input.time_in_force,
                trail_percent=input.trail_percent,
                trail_amount=input.trail_amount,
            ),
        )
        return OrderPayload(order=OrderNode.from_model(order))

    @mutation(
        MayMoveMoney,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.NOT_CANCELLABLE, ErrorCode.CANCEL_PENDING),
        payload=OrderPayload,
        description="Cancel an open order. Answers with the order once it is final; if the "
        "exchange has not answered within a short wait (or cannot be reached), with the order "
        "as it stands and CANCEL_PENDING: the cancel is recorded, and its outcome follows on "
        "orderUpdates.",
    )
    async def cancel_order(self, call: SignedIn, id: strawberry.ID) -> OrderPayload:
        order = await call.services.orders.cancel(call.principal.user_id, str(id))
        errors = []
        if order.status not in FINAL_STATUSES:
            errors = user_errors(CANCEL_PENDING)
        return OrderPayload(order=OrderNode.from_model(order), errors=errors)

    @mutation(
        IsAdmin,
        errors=(ErrorCode.UNKNOWN_ASSET, ErrorCode.INVALID_AMOUNT, ErrorCode.INVALID_INPUT),
        payload=ConfigureLiquidityPayload,
        description="ADMIN: turn the liquidity provider on or off for an asset, with its quoting.",
    )
    async def configure_liquidity(
        self, call: SignedIn, input: ConfigureLiquidityInput
    ) -> ConfigureLiquidityPayload:
        liquidity = call.services.liquidity
        notional = None
        if input.quote_notional is not None:
            notional = parse_amount(input.quote_notional, "USD", "quoteNotional")
        [config] = await liquidity.configure(
            [input.asset_id.strip().upper()],
            enabled=input.enabled,
            spread_bps=input.spread_bps,
            levels=input.levels,
            quote_notional=notional,
        )
        q = liquidity.quoting(config)
        return ConfigureLiquidityPayload(
            config=LiquidityConfigNode(
                asset_id=config.asset_id,
                enabled=config.enabled,
                spread_bps=q.spread_bps,
                levels=q.levels,
                quote_notional=q.quote_notional,
            )
        )


@strawberry.type
class OrdersSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Every event of the signed-in user's orders (and nobody else's), in order. "
        "With `after` (an `OrderUpdate.cursor`), first every later event, then live; without "
        "it, every event from the moment the subscription is accepted. No gaps, no "
        "duplicates; cursors are kept 30 days.",
    )
    async def order_updates(
        self, info: OrdersInfo, after: str | None = None
    ) -> AsyncGenerator[OrderUpdate, None]:
        principal = await info.context.require_principal()
        services = info.context.services
        try:
            start = order_events.parse_cursor(after)
        except DomainError as exc:
            raise ApiError(exc.problems[0].message, "INVALID_CURSOR", field="after") from None
        channel = user_channel(services.settings.redis_prefix, str(principal.user_id))
        hub = info.context.hub
        if hub is None:
            raise ApiError("Subscriptions are not served here.", "SERVICE_UNAVAILABLE")
        if start is None:  # from now: whatever is logged after this point is delivered
            async with services.sessionmaker() as s:
                start = await order_events.latest(s, principal.user_id)
        # Every event in order (a bounded queue, not conflation: each fill matters). A client
        # that falls further behind than the buffer is told so and resumes with its cursor.
        subscriber = BoundedQueueSubscriber(services.settings.quotes_hub_buffer)
        watch = SessionWatch(info.context)  # logout, password change, expiry end the stream
        last = start
        async with hub.subscription([channel], subscriber):
            # Live from here on; what was logged meanwhile (or since `after`) comes from the
            # log first, and live copies of it are dropped by their cursor.
            replay = True
            while True:
                if replay:
                    replay = False
                    async for cursor, doc in _logged(services, principal.user_id, last):
                        await watch.check()
                        last = cursor
                        yield _update(doc, cursor)
                try:
                    delivery = await asyncio.wait_for(subscriber.get(), watch.wait_budget())
                except TimeoutError:
                    await watch.check()
                    continue
                except SubscriberOverflow:
                    raise ApiError(
                        "Too many updates waiting: resume with `after` set to the last cursor.",
                        "SUBSCRIPTION_OVERFLOW",
                    ) from None
                if delivery.resync:  # the hub reconnected: messages may have been missed
                    replay = True
                if delivery.messages:
                    await watch.check()
                for message in delivery.messages:
                    doc = message.decode(json.loads)
                    cursor = int(doc.get("cursor") or 0)
                    if cursor <= last:
                        continue  # delivered from the log already
                    last = cursor
                    # The end of an order's trace (bourse.tracing): handed to its subscriber.
                    with tracing.child_span(
                        "orderUpdates.deliver", doc.get("trace"), SpanKind.PRODUCER
                    ):
                        update = _update(doc, cursor)
                    yield update


async def _logged(
    services: Services, user_id: uuid.UUID, cursor: int
) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
    """The user's logged events after ``cursor``, oldest first, a page at a time."""
    while True:
        async with services.sessionmaker() as s:
            page = await order_events.after(s, user_id, cursor)
        for cursor, payload in page:
            yield cursor, json.loads(payload)
        if len(page) < 500:
            return


def _update(doc: dict[str, Any], cursor: int) -> OrderUpdate:
    return OrderUpdate(
        event=OrderEvent(doc["event"]),
        order=OrderNode.from_snapshot(doc["order"]),
        fill=Fill.from_doc(doc["fill"]) if doc.get("fill") else None,
        cursor=str(cursor),
    )
