"""An order's writes in ONE statement: the hold, the order and its outbox row.

``placeOrder``'s transaction used to be five round trips after the asset was read (the hold's
conditional UPDATE, then INSERTs of the hold, the order and the outbox row). Here they are one
chain of data-modifying CTEs, on one prepared statement:

1. ``reserved``: the ledger's hold rule, unchanged (``Ledger.place_hold``): the account's
   ``held`` grows only ``WHERE balance - held >= amount``, so concurrent holds can never
   over-reserve (the CHECK constraints stand behind it);
2. ``hold``: the hold row, only if the reservation took;
3. ``placed``: the order, only if the hold was written;
4. the outbox row, returning its id (the request sends the command after the commit).

No reservation, no row at all: the statement returns nothing and the caller says
INSUFFICIENT_FUNDS. A duplicate client order id fails the whole statement (the unique index),
and the transaction rolls back with nothing held.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from models.ledger import HoldStatus
from models.orders.outbox import OutboxEntry
from models.orders.tables import Order

# The chain after the reservation's gate: ``{gate}`` is empty for ``write_order`` (the caller
# read and locked the asset in its transaction) and a condition on the ``gate`` CTE for the
# one-trip statement (``models.orders.direct``).
CHAIN: Final = """
reserved AS (
    UPDATE ledger_accounts SET held = held + CAST(:hold_amount AS numeric)
    WHERE id = CAST(:account_id AS uuid)
      AND balance - held >= CAST(:hold_amount AS numeric){gate}
    RETURNING id
), hold AS (
    INSERT INTO holds (id, account_id, user_id, amount, reason, reference_id, status, created_at)
    SELECT CAST(:hold_id AS uuid), reserved.id, CAST(:user_id AS uuid),
           CAST(:hold_amount AS numeric), CAST(:reason AS text), CAST(:order_id AS uuid),
           CAST(CAST(:hold_status AS text) AS hold_status), CAST(:created_at AS timestamptz)
    FROM reserved
    RETURNING id
), placed AS (
    INSERT INTO orders (
        id, user_id, asset_id, side, sub_type, time_in_force, quantity, notional, price,
        stop_price, trail_percent, trail_amount, currency, status, filled_quantity,
        filled_value, client_order_id, hold_id, queued_until, extended_hours, order_class,
        created_at, updated_at
    )
    SELECT CAST(:order_id AS uuid), CAST(:user_id AS uuid), CAST(:asset_id AS text),
           CAST(CAST(:side AS text) AS order_side),
           CAST(CAST(:sub_type AS text) AS order_sub_type),
           CAST(CAST(:time_in_force AS text) AS time_in_force),
           CAST(:quantity AS numeric), CAST(:notional AS numeric), CAST(:price AS numeric),
           CAST(:stop_price AS numeric), CAST(:trail_percent AS numeric),
           CAST(:trail_amount AS numeric), CAST(:currency AS text),
           CAST(CAST(:status AS text) AS order_status), 0, 0, CAST(:client_order_id AS text),
           hold.id, CAST(:queued_until AS timestamptz), CAST(:extended_hours AS boolean),
           CAST(CAST(:order_class AS text) AS order_class),
           CAST(:created_at AS timestamptz), CAST(:created_at AS timestamptz)
    FROM hold
    RETURNING id
)"""
OUTBOX_INSERT: Final = """
INSERT INTO order_outbox (order_id, asset_id, command, available_at, created_at)
SELECT placed.id, CAST(:asset_id AS text), CAST(:command AS text),
       CAST(:available_at AS timestamptz), CAST(:created_at AS timestamptz)
FROM placed
RETURNING id"""

_PLACE: Final = text("WITH " + CHAIN.replace("{gate}", "") + OUTBOX_INSERT)


def parameters(
    order: Order, outbox: OutboxEntry, *, account_id: uuid.UUID, hold_amount: Decimal
) -> dict[str, object]:
    """The chain's parameters by name (both statements)."""
    if not hold_amount.is_finite() or hold_amount <= 0:
        raise ValueError("hold amounts are positive")
    assert order.hold_id is not None
    return {
        "hold_amount": hold_amount,
        "account_id": account_id,
        "hold_id": order.hold_id,
        "user_id": order.user_id,
        "reason": "order",
        "hold_status": str(HoldStatus.ACTIVE),
        "order_id": order.id,
        "asset_id": order.asset_id,
        "side": str(order.side),
        "sub_type": str(order.sub_type),
        "time_in_force": str(order.time_in_force),
        "quantity": order.quantity,
        "notional": order.notional,
        "price": order.price,
        "stop_price": order.stop_price,
        "trail_percent": order.trail_percent,
        "trail_amount": order.trail_amount,
        "currency": order.currency,
        "status": str(order.status),
        "client_order_id": order.client_order_id,
        "queued_until": order.queued_until,
        "extended_hours": order.extended_hours,
        "order_class": str(order.order_class or "SIMPLE"),
        "created_at": order.created_at,
        "command": outbox.command,
        "available_at": outbox.available_at,
    }


async def write_order(
    s: AsyncSession,
    order: Order,
    outbox: OutboxEntry,
    *,
    account_id: uuid.UUID,
    hold_amount: Decimal,
) -> bool:
    """Write ``order`` (with ``order.hold_id`` set), its hold of ``hold_amount`` on
    ``account_id`` and ``outbox`` in one statement; False (nothing written) when the account's
    available balance does not cover the hold. Sets ``outbox.id``."""
    params = parameters(order, outbox, account_id=account_id, hold_amount=hold_amount)
    outbox_id = (await s.execute(_PLACE, params)).scalar_one_or_none()
    if outbox_id is None:
        return False
    outbox.id = outbox_id
    return True
