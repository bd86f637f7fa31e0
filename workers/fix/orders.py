"""FIX order entry ↔ the platform's orders: NewOrderSingle, OrderCancelRequest and
OrderStatusRequest in, ExecutionReports and OrderCancelRejects out.

No rule lives here: a NewOrderSingle becomes the same ``PlaceOrderRequest`` GraphQL's
``placeOrder`` builds and goes through ``OrderBook.place`` (``cancel``, ``get`` alike); what
this module checks is only FIX's own shape (required tags, enumerated values, number format),
answered with a session-level Reject (``FixReject``). The platform's refusals (unknown asset,
buying power, …) are an ExecutionReport ``ExecType=8`` whose Text starts with the error code
GraphQL would show.

ExecutionReports for order events are built from the durable ``order_events`` log (the log
``orderUpdates`` replays), one per event, ``ExecID`` = ``E<cursor>``: the gateway's event pump
(``workers.fix.gateway``) reads it, so an event is reported once per session even across
reconnects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import simplefix

from models.errors import DomainError, ErrorCode
from models.orders import OrderBook, PlaceOrderRequest
from models.orders.tables import Order, OrderStatus, OrderSubType, Side, TimeInForce
from models.orders.view import FillView, OrderView
from workers.fix import codec as t

Pairs = list[tuple[int, object]]

SIDES: Final = {"1": Side.BUY, "2": Side.SELL}
ORD_TYPES: Final = {
    "1": OrderSubType.MARKET,
    "2": OrderSubType.LIMIT,
    "3": OrderSubType.STOP_LOSS,
    "4": OrderSubType.STOP_LIMIT,
}
TIFS: Final = {
    "0": TimeInForce.DAY,
    "1": TimeInForce.GTC,
    "3": TimeInForce.IOC,
    "4": TimeInForce.FOK,
}
SIDE_CODE: Final = {v: k for k, v in SIDES.items()}
TIF_CODE: Final = {v: k for k, v in TIFS.items()}
ORD_TYPE_CODE: Final = {**{v: k for k, v in ORD_TYPES.items()}, OrderSubType.TRAILING_STOP: "3"}
ORD_STATUS_CODE: Final = {
    OrderStatus.PENDING: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.EXECUTED: "2",
    OrderStatus.CANCELLED: "4",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
EXEC_TYPE_CODE: Final = {
    "ACCEPTED": "0",
    "PARTIAL_FILL": "F",
    "FILL": "F",
    "CANCELLED": "4",
    "REPLACED": "5",
    "REJECTED": "8",
    "EXPIRED": "C",
    "TRIGGERED": "L",
}
# OrdRejReason(103) for the platform's placement refusals; 99 (Other) for the rest.
ORD_REJ_REASON: Final = {
    ErrorCode.UNKNOWN_ASSET: "1",
    ErrorCode.MARKET_CLOSED: "2",
    ErrorCode.INSUFFICIENT_BUYING_POWER: "3",
    ErrorCode.INSUFFICIENT_SHARES: "3",
    ErrorCode.DUPLICATE_CLIENT_ORDER_ID: "6",
    ErrorCode.INVALID_ORDER_TYPE: "11",
    ErrorCode.INVALID_QUANTITY: "13",
}
# SessionRejectReason(373)
REQUIRED_TAG_MISSING, VALUE_INCORRECT, INCORRECT_FORMAT = "1", "5", "6"


class FixReject(Exception):
    """A message FIX itself refuses: answered with a session-level Reject (35=3)."""

    def __init__(self, reason: str, tag: int | None, text: str) -> None:
        super().__init__(text)
        self.reason, self.tag, self.text = reason, tag, text


@dataclass(frozen=True, slots=True)
class Outgoing:
    msg_type: str
    pairs: Pairs


def _required(m: simplefix.FixMessage, tag: int) -> str:
    value = t.text(m, tag)
    if value is None or value == "":
        raise FixReject(REQUIRED_TAG_MISSING, tag, f"Required tag missing: {tag}")
    return value


def _enum(
    m: simplefix.FixMessage, tag: int, allowed: dict[str, Any], *, default: str | None = None
) -> Any:
    value = t.text(m, tag)
    if value is None:
        if default is None:
            raise FixReject(REQUIRED_TAG_MISSING, tag, f"Required tag missing: {tag}")
        value = default
    if value not in allowed:
        raise FixReject(VALUE_INCORRECT, tag, f"Value is incorrect (out of range) for tag {tag}")
    return allowed[value]


def _number(m: simplefix.FixMessage, tag: int) -> str | None:
    """A FIX float field, checked for format only (the platform's rules judge the value)."""
    value = t.text(m, tag)
    if value is None:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        parsed = Decimal("NaN")
    if not parsed.is_finite() or "e" in value.lower():
        raise FixReject(INCORRECT_FORMAT, tag, f"Incorrect data format for value of tag {tag}")
    return value


def _fmt(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def place_request(m: simplefix.FixMessage) -> PlaceOrderRequest:
    """A NewOrderSingle (35=D) as the request ``placeOrder`` builds."""
    cl_ord_id = _required(m, t.CL_ORD_ID)
    symbol = _required(m, t.SYMBOL)
    side = _enum(m, t.SIDE, SIDES)
    _required(m, t.TRANSACT_TIME)
    sub_type = _enum(m, t.ORD_TYPE, ORD_TYPES)
    tif = _enum(m, t.TIME_IN_FORCE, TIFS, default="0")  # FIX: absent means Day
    quantity, cash = _number(m, t.ORDER_QTY), _number(m, t.CASH_ORDER_QTY)
    if quantity is None and cash is None:
        raise FixReject(REQUIRED_TAG_MISSING, t.ORDER_QTY, "Required tag missing: 38")
    price, stop = _number(m, t.PRICE), _number(m, t.STOP_PX)
    if sub_type in (OrderSubType.LIMIT, OrderSubType.STOP_LIMIT) and price is None:
        raise FixReject(REQUIRED_TAG_MISSING, t.PRICE, "Required tag missing: 44")
    if sub_type in (OrderSubType.STOP_LOSS, OrderSubType.STOP_LIMIT) and stop is None:
        raise FixReject(REQUIRED_TAG_MISSING, t.STOP_PX, "Required tag missing: 99")
    return PlaceOrderRequest(
        asset_id=symbol,
        side=side,
        sub_type=sub_type,
        time_in_force=tif,
        quantity=quantity,
        notional=cash,
        price=price,
        stop_price=stop,
        client_order_id=cl_ord_id,
    )


def _order_fields(o: OrderView, cl_ord_id: str | None) -> Pairs:
    return [
        (t.ORDER_ID, str(o.id)),
        (t.CL_ORD_ID, cl_ord_id or o.client_order_id or str(o.id)),
        (t.SYMBOL, o.asset_id),
        (t.SIDE, SIDE_CODE[o.side]),
        (t.ORD_TYPE, ORD_TYPE_CODE[o.sub_type]),
        (t.TIME_IN_FORCE, TIF_CODE[o.time_in_force]),
        (t.ORDER_QTY, _fmt(o.quantity)),
        (t.CASH_ORDER_QTY, _fmt(o.notional)),
        (t.PRICE, _fmt(o.price)),
        (t.STOP_PX, _fmt(o.stop_price)),
        (t.ORD_STATUS, ORD_STATUS_CODE[o.status]),
        (t.CUM_QTY, _fmt(o.filled_quantity)),
        (t.LEAVES_QTY, _fmt(o.remaining_quantity) or "0"),
        (t.AVG_PX, _fmt(o.average_price) or "0"),
        (t.TRANSACT_TIME, t.sending_time(o.updated_at)),
    ]


def event_report(cursor: int, doc: dict[str, Any], cancel_ids: dict[uuid.UUID, str]) -> Outgoing:
    """The ExecutionReport of one logged order event (``cancel_ids``: the ClOrdID of this
    session's pending OrderCancelRequest per order, reported on its CANCELLED)."""
    order = OrderView.from_wire(doc["order"])
    event = str(doc["event"])
    cl_ord_id = None
    extra: Pairs = []
    if event == "CANCELLED" and order.id in cancel_ids:
        cl_ord_id = cancel_ids.pop(order.id)
        extra.append((t.ORIG_CL_ORD_ID, order.client_order_id or str(order.id)))
    pairs: Pairs = [(t.EXEC_ID, f"E{cursor}"), (t.EXEC_TYPE, EXEC_TYPE_CODE.get(event, "I"))]
    pairs += _order_fields(order, cl_ord_id) + extra
    if doc.get("fill"):
        fill = FillView.from_wire(doc["fill"])
        pairs += [(t.LAST_QTY, _fmt(fill.quantity)), (t.LAST_PX, _fmt(fill.price))]
    reason = order.reject_reason if event == "REJECTED" else order.cancel_reason
    if reason and event in ("REJECTED", "CANCELLED", "EXPIRED"):
        pairs.append((t.TEXT, reason))
    return Outgoing("8", pairs)


def status_report(order: Order) -> Outgoing:
    """OrderStatusRequest's answer (ExecType=I)."""
    pairs: Pairs = [(t.EXEC_ID, f"S{uuid.uuid4().hex}"), (t.EXEC_TYPE, "I")]
    return Outgoing("8", pairs + _order_fields(OrderView.of(order), None))


def placement_rejected(m: simplefix.FixMessage, exc: DomainError) -> Outgoing:
    """The platform refused a NewOrderSingle: ExecType=8, the code and message in Text."""
    problem = exc.problems[0]
    return Outgoing(
        "8",
        [
            (t.ORDER_ID, "NONE"),
            (t.CL_ORD_ID, t.text(m, t.CL_ORD_ID)),
            (t.EXEC_ID, f"R{uuid.uuid4().hex}"),
            (t.EXEC_TYPE, "8"),
            (t.ORD_STATUS, "8"),
            (t.SYMBOL, t.text(m, t.SYMBOL)),
            (t.SIDE, t.text(m, t.SIDE)),
            (t.ORD_REJ_REASON, ORD_REJ_REASON.get(problem.code, "99")),
            (t.CUM_QTY, "0"),
            (t.LEAVES_QTY, "0"),
            (t.AVG_PX, "0"),
            (t.TEXT, f"{problem.code}: {problem.message}"),
        ],
    )


def unknown_order_status(m: simplefix.FixMessage) -> Outgoing:
    return Outgoing(
        "8",
        [
            (t.ORDER_ID, t.text(m, t.ORDER_ID) or "NONE"),
            (t.CL_ORD_ID, t.text(m, t.CL_ORD_ID)),
            (t.EXEC_ID, f"S{uuid.uuid4().hex}"),
            (t.EXEC_TYPE, "I"),
            (t.ORD_STATUS, "8"),
            (t.SYMBOL, t.text(m, t.SYMBOL)),
            (t.SIDE, t.text(m, t.SIDE)),
            (t.ORD_REJ_REASON, "5"),
            (t.CUM_QTY, "0"),
            (t.LEAVES_QTY, "0"),
            (t.AVG_PX, "0"),
            (t.TEXT, "NOT_FOUND: No such order."),
        ],
    )


def cancel_rejected(m: simplefix.FixMessage, order: Order | None, exc: DomainError) -> Outgoing:
    problem = exc.problems[0]
    return Outgoing(
        "9",
        [
            (t.ORDER_ID, str(order.id) if order else "NONE"),
            (t.CL_ORD_ID, t.text(m, t.CL_ORD_ID)),
            (t.ORIG_CL_ORD_ID, t.text(m, t.ORIG_CL_ORD_ID)),
            (t.ORD_STATUS, ORD_STATUS_CODE[order.status] if order else "8"),
            (t.CXL_REJ_RESPONSE_TO, "1"),
            (t.CXL_REJ_REASON, "1" if problem.code is ErrorCode.NOT_FOUND else "0"),
            (t.TEXT, f"{problem.code}: {problem.message}"),
        ],
    )


async def find_order(
    book: OrderBook, user_id: uuid.UUID, m: simplefix.FixMessage, cl_tag: int
) -> Order | None:
    """The order a cancel or status request names: OrderID(37) if given, else by ClOrdID."""
    order_id = t.text(m, t.ORDER_ID)
    if order_id and order_id != "NONE":
        return await book.get(user_id, order_id)
    cl_ord_id = t.text(m, cl_tag)
    return await book.by_client_order_id(user_id, cl_ord_id) if cl_ord_id else None


class OrderEntry:
    """The application messages of one partner's session, against its customer's orders."""

    def __init__(self, book: OrderBook, user_id: uuid.UUID) -> None:
        self.book = book
        self.user_id = user_id
        self.cancel_ids: dict[uuid.UUID, str] = {}

    async def new_order(self, m: simplefix.FixMessage) -> list[Outgoing]:
        request = place_request(m)
        try:
            await self.book.place(self.user_id, request)
        except DomainError as exc:
            return [placement_rejected(m, exc)]
        return []  # ExecType=0 (New) follows from the order-event log when the shard accepts

    async def cancel(self, m: simplefix.FixMessage) -> list[Outgoing]:
        cl_ord_id = _required(m, t.CL_ORD_ID)
        _required(m, t.ORIG_CL_ORD_ID)
        _required(m, t.SYMBOL)
        _enum(m, t.SIDE, SIDES)
        _required(m, t.TRANSACT_TIME)
        order = await find_order(self.book, self.user_id, m, t.ORIG_CL_ORD_ID)
        if order is None:
            return [
                cancel_rejected(m, None, DomainError.one(ErrorCode.NOT_FOUND, "No such order."))
            ]
        self.cancel_ids[order.id] = cl_ord_id
        try:
            await self.book.cancel(self.user_id, str(order.id), wait_seconds=0)
        except DomainError as exc:
            self.cancel_ids.pop(order.id, None)
            return [cancel_rejected(m, order, exc)]
        return []  # ExecType=4 (Canceled) follows from the log

    async def status(self, m: simplefix.FixMessage) -> list[Outgoing]:
        _required(m, t.CL_ORD_ID)
        order = await find_order(self.book, self.user_id, m, t.CL_ORD_ID)
        return [status_report(order) if order else unknown_order_status(m)]
