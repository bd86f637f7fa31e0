"""Trade confirmations (SEC Rule 10b-10's contents): for one executed order, the security, the
side, each execution's time, quantity and price, the total, the average price, the capacity in
which the broker acted, the commission (none) and the settlement; from the order and its fills.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.clock import utcnow
from models.assets import Asset
from models.documents.render import BROKER, _Pdf, money, qty
from models.ledger import ZERO
from models.orders.tables import Fill, Order


@dataclass(frozen=True, slots=True)
class Execution:
    fill_id: str
    at: datetime
    quantity: Decimal
    price: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True)
class Confirmation:
    order: Order
    asset_name: str
    executions: list[Execution]
    generated_at: datetime

    @property
    def quantity(self) -> Decimal:
        return sum((e.quantity for e in self.executions), ZERO)

    @property
    def total(self) -> Decimal:
        return sum((e.value for e in self.executions), ZERO)


async def build_confirmation(
    s: AsyncSession, user_id: uuid.UUID, order_id: uuid.UUID
) -> Confirmation:
    order = await s.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise LookupError(f"no order {order_id} of {user_id}")
    asset = await s.get(Asset, order.asset_id)
    fills = await s.scalars(
        select(Fill)
        .where(or_(Fill.maker_order_id == order_id, Fill.taker_order_id == order_id))
        .order_by(Fill.executed_at, Fill.id)
    )
    executions = [Execution(f.id, f.executed_at, f.quantity, f.price, f.value) for f in fills]
    return Confirmation(order, asset.name if asset else order.asset_id, executions, utcnow())


def confirmation_pdf(c: Confirmation) -> bytes:
    o = c.order
    pdf = _Pdf("Trade confirmation")
    pdf.add_page()
    side = "Bought" if o.side.value == "BUY" else "Sold"
    average = c.total / c.quantity if c.quantity else ZERO
    for line in (
        f"Order: {o.id}",
        f"Account: {o.user_id}",
        f"{side} {qty(c.quantity)} {o.asset_id} ({c.asset_name})",
        f"Order type: {o.sub_type.value} {o.time_in_force.value}"
        + (f", limit {qty(o.price)}" if o.price is not None else "")
        + (f", stop {qty(o.stop_price)}" if o.stop_price is not None else ""),
        f"Average price: {qty(average.quantize(Decimal('1e-6')))} {o.currency}",
        f"Total {'cost' if o.side.value == 'BUY' else 'proceeds'}: {money(c.total)} {o.currency}",
        "Commission: 0.00; fees: 0.00",
        "Capacity: agent (matched on the Bourse order book)",
        "Settlement: on execution (sandbox ledger)",
        f"Generated: {c.generated_at:%Y-%m-%d %H:%M} UTC",
    ):
        pdf.line_of(line)
    pdf.heading("Executions")
    pdf.grid(
        ["Time (UTC)", "Quantity", "Price", "Value"],
        [
            [f"{e.at:%Y-%m-%d %H:%M:%S}", qty(e.quantity), qty(e.price), money(e.value)]
            for e in c.executions
        ],
        [60, 40, 40, 50],
    )
    pdf.ln(3)
    pdf.line_of(BROKER)
    return bytes(pdf.output())
