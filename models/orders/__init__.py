"""Orders: what users asked the exchange to do, its fills, and the path to the shards.

- ``tables.py``: the enums and the ``orders`` and ``fills`` tables;
- ``rules.py``: pure rules, ``plan_order`` (a request becomes the stored order, its hold and
  its engine command);
- ``outbox.py``: the ``order_outbox`` table and the one way its commands are sent (by the API
  and by the relay);
- ``events.py``: the ``order_events`` log behind ``orderUpdates``' cursors and replay;
- ``linked.py``: the pure rules of contingent orders (brackets, OCO, OTO) and their shared hold;
- ``view.py``: ``OrderView`` / ``FillView``, the one typed view of an order that the API shows
  and the settlement's notices carry (remaining quantity and average price computed once);
- ``service.py``: ``OrderBook``, place (one transaction: order, hold, outbox row), replace,
  cancel, read.

Importers use ``models.orders``; the names below are its public surface.
"""

from models.orders.events import OrderEventRow
from models.orders.outbox import MARK_SENT_BATCH_SECONDS, RELAY_GRACE, Outbox, OutboxEntry
from models.orders.rules import (
    CLIENT_ORDER_ID_RE,
    MAX_NOTIONAL,
    MAX_QUANTITY,
    OrderPlan,
    OrdersConfig,
    PlaceOrderRequest,
    ReplaceOrderRequest,
    engine_command,
    plan_order,
    plan_replace,
)
from models.orders.service import OrderBook, OrderPage, encode_cursor
from models.orders.tables import (
    FINAL_STATUSES,
    LIQUIDITY_PROVIDER,
    OPEN_STATUSES,
    Fill,
    Order,
    OrderClass,
    OrderReplacement,
    OrderStatus,
    OrderSubType,
    ReplaceStatus,
    Side,
    TimeInForce,
    utc_from_ns,
)
from models.orders.view import FillView, OrderView

__all__ = [
    "CLIENT_ORDER_ID_RE",
    "FINAL_STATUSES",
    "LIQUIDITY_PROVIDER",
    "MARK_SENT_BATCH_SECONDS",
    "MAX_NOTIONAL",
    "MAX_QUANTITY",
    "OPEN_STATUSES",
    "RELAY_GRACE",
    "Fill",
    "FillView",
    "Order",
    "OrderBook",
    "OrderClass",
    "OrderEventRow",
    "OrderPage",
    "OrderPlan",
    "OrderReplacement",
    "OrderStatus",
    "OrderSubType",
    "OrderView",
    "OrdersConfig",
    "Outbox",
    "OutboxEntry",
    "PlaceOrderRequest",
    "ReplaceOrderRequest",
    "ReplaceStatus",
    "Side",
    "TimeInForce",
    "encode_cursor",
    "engine_command",
    "plan_order",
    "plan_replace",
    "utc_from_ns",
]
