"""Orders and trading: placeOrder, cancelOrder, order, orders, orderUpdates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from bourse.keys import user_channel
from models.errors import DomainError, ErrorCode
from models.funds import parse_amount
from models.orders import OrderStatus as OrderStatusModel
from models.orders import PlaceOrderRequest, encode_cursor
from resolvers.calls import SignedIn, query
from resolvers.context import Context
from resolvers.errors import ApiError, bad_input
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
)
from resolvers.permissions import IsAdmin, IsAuthenticated, MayMoveMoney
from resolvers.relay import page_info

OrdersInfo = Info[Context, Any]


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
    ErrorCode.INVALID_INPUT,
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
            ),
        )
        return OrderPayload(order=OrderNode.from_model(order))

    @mutation(
        MayMoveMoney,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.NOT_CANCELLABLE),
        payload=OrderPayload,
        description="Cancel an open order. Answers with the order once it is final (or after "
        "a short wait: the final state then follows on orderUpdates).",
    )
    async def cancel_order(self, call: SignedIn, id: strawberry.ID) -> OrderPayload:
        order = await call.services.orders.cancel(call.principal.user_id, str(id))
        return OrderPayload(order=OrderNode.from_model(order))

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
        description="Every event of the signed-in user's orders (and nobody else's).",
    )
    async def order_updates(self, info: OrdersInfo) -> AsyncGenerator[OrderUpdate, None]:
        principal = await info.context.require_principal()
        services = info.context.services
        channel = user_channel(services.settings.redis_prefix, str(principal.user_id))
        hub = info.context.hub
        if hub is None:
            raise ApiError("Subscriptions are not served here.", "SERVICE_UNAVAILABLE")
        # Every event in order (a bounded queue, not conflation: each fill matters). A client
        # that falls further behind than the buffer is told so and should re-read `orders`.
        subscriber = BoundedQueueSubscriber(services.settings.quotes_hub_buffer)
        watch = SessionWatch(info.context)  # logout, password change, expiry end the stream
        async with hub.subscription([channel], subscriber):
            while True:
                try:
                    delivery = await asyncio.wait_for(subscriber.get(), watch.wait_budget())
                except TimeoutError:
                    await watch.check()
                    continue
                except SubscriberOverflow:
                    raise ApiError(
                        "Too many updates waiting: re-read your orders and subscribe again.",
                        "SUBSCRIPTION_OVERFLOW",
                    ) from None
                if delivery.messages:
                    await watch.check()
                for message in delivery.messages:
                    doc = message.decode(json.loads)
                    yield OrderUpdate(
                        event=OrderEvent(doc["event"]),
                        order=OrderNode.from_snapshot(doc["order"]),
                        fill=Fill.from_doc(doc["fill"]) if doc.get("fill") else None,
                    )
