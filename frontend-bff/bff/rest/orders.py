"""`/api/orders`: place, status, cancel, list (seed section 3), on `models.orders.OrderBook`.

`Idempotency-Key` on `POST /api/orders` is the order's client order id: a retry with the same
key and the same order answers the order already placed (200, not 201) instead of placing a
second one; the same key with another order is a conflict (`DUPLICATE_CLIENT_ORDER_ID`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from bff.rest.auth import own, services_of, signed_in
from bff.rest.problems import RESPONSES, ProblemError
from bff.rest.shapes import (
    MessageResponse,
    OrdersResponse,
    OrderStatusResponse,
    OrderSummary,
    PlacedOrder,
    PlaceOrderRequest,
    Status,
    dec,
)
from models.accounts import Principal
from models.errors import DomainError, ErrorCode
from models.orders import Order, OrderStatus, OrderSubType, Side, TimeInForce
from models.orders.rules import PlaceOrderRequest as PlaceRequest
from models.orders.view import OrderView
from resolvers.permissions import MayMoveMoney

router = APIRouter(prefix="/orders", tags=["orders"], responses=RESPONSES)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=64,
        description="Retry-safe: the same key answers the same order.",
    ),
]


def _same(order: Order, req: PlaceRequest) -> bool:
    def amount(value: str | None) -> str | None:
        return None if value is None else value.strip()

    view = OrderView.of(order)
    return (
        view.asset_id == req.asset_id.strip().upper()
        and view.side == req.side
        and view.sub_type == req.sub_type
        and (view.quantity is None) == (amount(req.quantity) is None)
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def place(
    body: PlaceOrderRequest,
    request: Request,
    response: Response,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "placeOrder", MayMoveMoney.roles, mutates=True))
    ],
    idempotency_key: IdempotencyKey = None,
) -> PlacedOrder:
    """Place an order (GraphQL `placeOrder`)."""
    own(principal, body.userId)
    req = PlaceRequest(
        asset_id=body.assetId,
        side=Side(body.orderType),
        sub_type=OrderSubType(body.orderSubType),
        time_in_force=TimeInForce(body.timeInForce),
        quantity=body.quantity,
        price=body.price,
        stop_price=body.stopPrice,
        client_order_id=idempotency_key,
    )
    orders = services_of(request).orders
    try:
        order = await orders.place(principal.user_id, req)
    except DomainError as exc:
        codes = {p.code for p in exc.problems}
        if idempotency_key and codes == {ErrorCode.DUPLICATE_CLIENT_ORDER_ID}:
            earlier = await orders.by_client_order_id(principal.user_id, idempotency_key)
            if earlier is not None and _same(earlier, req):
                response.status_code = status.HTTP_200_OK
                return PlacedOrder(orderId=str(earlier.id), status=_status(earlier.status))
        raise ProblemError.of(exc) from None
    return PlacedOrder(orderId=str(order.id), status=_status(order.status))


def _status(value: OrderStatus) -> Status:
    found: Status = value.value
    return found


@router.get("/user/{userId}")
async def user_orders(
    userId: str,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Query", "orders"))],
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    startDate: datetime | None = None,
    endDate: datetime | None = None,
) -> OrdersResponse:
    """The caller's orders, newest first, at most 100 (GraphQL `orders`)."""
    own(principal, userId)
    try:
        page = await services_of(request).orders.page(
            principal.user_id,
            status=status_,
            asset_id=None,
            start=startDate,
            end=endDate,
            first=100,
            after=None,
        )
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    views = [OrderView.of(o) for o in page.items]
    return OrdersResponse(
        orders=[
            OrderSummary(
                orderId=str(v.id),
                assetId=v.asset_id,
                orderType=v.side.value,
                quantity=dec(v.quantity) if v.quantity is not None else None,
                price=dec(v.price) if v.price is not None else None,
                status=_status(v.status),
                createdAt=v.created_at,
            )
            for v in views
        ]
    )


@router.get("/{orderId}")
async def order_status(
    orderId: str,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Query", "order"))],
) -> OrderStatusResponse:
    """One of the caller's orders (GraphQL `order`); anyone else's is not found."""
    order = await services_of(request).orders.get(principal.user_id, orderId)
    if order is None:
        raise ProblemError("NOT_FOUND", "No such order.", field="orderId")
    v = OrderView.of(order)
    return OrderStatusResponse(
        orderId=str(v.id),
        status=_status(v.status),
        filledQuantity=dec(v.filled_quantity),
        remainingQuantity=dec(v.remaining_quantity) if v.remaining_quantity is not None else None,
    )


@router.delete("/{orderId}")
async def cancel(
    orderId: str,
    request: Request,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "cancelOrder", MayMoveMoney.roles, mutates=True))
    ],
) -> MessageResponse:
    """Cancel an open order (GraphQL `cancelOrder`); answers once the order is final."""
    try:
        await services_of(request).orders.cancel(principal.user_id, orderId)
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    return MessageResponse(message="Order cancelled successfully")
