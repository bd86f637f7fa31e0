"""Settlement: the shards' events applied to orders and the ledger, exactly once.

``Settlement.apply`` runs inside ONE PostgreSQL transaction per batch (the caller's):

- Each events stream has a cursor row (``settlement_cursors``): entries at or before it were
  applied by an earlier transaction whose acknowledgement was lost, and are skipped. The cursor
  moves in the same transaction as the effects, so a batch is applied entirely or not at all.
- Each fill is inserted into ``fills`` under its engine fill id (primary key, ON CONFLICT DO
  NOTHING): a fill seen again changes nothing, whatever the cursor says.
- Locks: every ledger account the batch touches is locked first, in id order (the ledger's
  rule), then the orders, in id order; nothing else takes them in another order.
- A fill moves cash (price x quantity rounded DOWN to the minor unit) and shares between the two
  parties in one balanced journal entry; the buyer's cash hold and the seller's share hold shrink
  by what the fill used, before the postings. The liquidity provider's side goes to the
  platform's LIQUIDITY accounts.
- An order that ends (filled, cancelled, expired, rejected) releases what is left of its hold.

It returns the notices to publish to users after the commit (``orderUpdates``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import structlog
from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import fill_cash, plain
from matching.codec import AssetScales, from_fixed
from matching.wire import (
    AcceptedEvent,
    CancelledEvent,
    ExpiredEvent,
    FillEvent,
    OrderEndEvent,
    RejectedEvent,
    TriggeredEvent,
    WireEvent,
)
from models.assets import Asset
from models.base import Base
from models.errors import DomainError
from models.exchange import scales
from models.ledger import AccountKind, Ledger, Leg
from models.orders import (
    FINAL_STATUSES,
    LIQUIDITY_PROVIDER,
    Fill,
    Order,
    OrderStatus,
    Side,
    utc_from_ns,
)
from models.orders.view import FillView, OrderView

log = structlog.get_logger("bourse.settlement")
FILL_NAMESPACE = uuid.UUID("0b5e1a57-9f57-4c4b-8a77-3c1e0f5d2a10")

# Called once per user side of each new fill, inside the settlement transaction (positions and
# tax lots live in models.positions).
FillHook = Callable[..., Awaitable[object]]


class SettlementCursor(Base):
    __tablename__ = "settlement_cursors"

    stream: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def stream_id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


# A settled entry: (events stream, entry id, the event decoded once by matching.wire).
Entry = tuple[str, str, WireEvent]


@dataclass(frozen=True, slots=True)
class Notice:
    """What a user is told after the commit (``orderUpdates``), published on their channel."""

    user_id: uuid.UUID
    event: str  # ACCEPTED | PARTIAL_FILL | FILL | CANCELLED | REJECTED | EXPIRED | TRIGGERED
    order: OrderView
    fill: FillView | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "event": self.event,
                "order": self.order.to_wire(),
                "fill": None if self.fill is None else self.fill.to_wire(),
            },
            separators=(",", ":"),
        )


def _uuid(raw: object) -> uuid.UUID | None:
    """An order or user id of ours; None for the liquidity provider's (``lp-<n>``,
    ``liquidity-provider``) or anything else that is not a UUID."""
    if not isinstance(raw, str) or raw == LIQUIDITY_PROVIDER:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@dataclass
class _Batch:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    scales: dict[str, AssetScales] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)

    def order(self, raw_id: str | None) -> Order | None:
        """The locked order of this batch with that id (None: not ours, e.g. the LP's)."""
        ident = _uuid(raw_id)
        return None if ident is None else self.orders.get(ident)


class Settlement:
    def __init__(self, ledger: Ledger, on_fill: FillHook | None = None) -> None:
        self._ledger = ledger
        self._on_fill = on_fill

    async def apply(self, s: AsyncSession, entries: Sequence[Entry]) -> list[Notice]:
        """Apply ``(stream, entry_id, event)`` entries in order; call inside a transaction."""
        fresh = await self._advance_cursors(s, entries)
        if not fresh:
            return []
        batch = _Batch()
        symbols = {ev.asset_id for _, _, ev in fresh if ev.asset_id}
        for a in (await s.scalars(select(Asset).where(Asset.symbol.in_(symbols)))).all():
            batch.assets[a.symbol] = a
            batch.scales[a.symbol] = scales(a)

        order_ids: set[uuid.UUID] = set()
        for _, _, ev in fresh:
            keys = (ev.order_id, ev.maker_order_id) if isinstance(ev, FillEvent) else (ev.order_id,)
            for key in keys:
                ident = _uuid(key)
                if ident is not None:
                    order_ids.add(ident)
        # Orders are read first without locks to learn their accounts; then accounts are locked
        # (id order), then the orders (id order).
        plain = (await s.scalars(select(Order).where(Order.id.in_(order_ids)))).all()
        accounts: set[uuid.UUID] = set()
        for o in plain:
            accounts.add(await self._ledger.account_id(s, o.user_id, AccountKind.CASH, o.currency))
            accounts.add(
                await self._ledger.account_id(s, o.user_id, AccountKind.SHARES, o.asset_id)
            )
        for _, _, ev in fresh:
            if isinstance(ev, FillEvent) and LIQUIDITY_PROVIDER in (
                ev.maker_user_id,
                ev.taker_user_id,
            ):
                asset = batch.assets.get(ev.asset_id)
                if asset is not None:
                    accounts.add(await self._lp_account(s, asset.currency))
                    accounts.add(await self._lp_account(s, asset.symbol))
        await self._ledger.lock(s, accounts)
        locked = (
            await s.scalars(
                select(Order)
                .where(Order.id.in_(order_ids))
                .order_by(Order.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
        batch.orders = {o.id: o for o in locked}

        for _, _, ev in fresh:
            if isinstance(ev, FillEvent):
                await self._fill(s, batch, ev)
            elif isinstance(ev, CancelledEvent | ExpiredEvent | RejectedEvent):
                await self._end(s, batch, ev)
            elif isinstance(ev, AcceptedEvent | TriggeredEvent):
                order = batch.order(ev.order_id)
                if order is None:
                    continue
                if isinstance(ev, TriggeredEvent):
                    order.triggered_at = utc_from_ns(ev.ts or 0)
                    order.updated_at = utcnow()
                kind = "TRIGGERED" if isinstance(ev, TriggeredEvent) else "ACCEPTED"
                batch.notices.append(Notice(order.user_id, kind, OrderView.of(order)))
        await s.flush()
        return batch.notices

    async def _advance_cursors(self, s: AsyncSession, entries: Sequence[Entry]) -> list[Entry]:
        streams = sorted({stream for stream, _, _ in entries})
        if not streams:
            return []
        rows = await s.execute(
            select(SettlementCursor)
            .where(SettlementCursor.stream.in_(streams))
            .order_by(SettlementCursor.stream)
            .with_for_update()
        )
        cursors = {c.stream: stream_id_key(c.last_id) for (c,) in rows}
        fresh: list[Entry] = []
        last: dict[str, str] = {}
        for stream, entry_id, ev in entries:
            if stream in cursors and stream_id_key(entry_id) <= cursors[stream]:
                continue
            fresh.append((stream, entry_id, ev))
            last[stream] = entry_id
        for stream, entry_id in last.items():
            stmt = insert(SettlementCursor).values(
                stream=stream, last_id=entry_id, updated_at=utcnow()
            )
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[SettlementCursor.stream],
                    set_={"last_id": entry_id, "updated_at": utcnow()},
                )
            )
        return fresh

    async def _lp_account(self, s: AsyncSession, asset: str) -> uuid.UUID:
        return await self._ledger.account_id(s, None, AccountKind.LIQUIDITY, asset)

    async def _fill(self, s: AsyncSession, batch: _Batch, ev: FillEvent) -> None:
        asset = batch.assets.get(ev.asset_id)
        if asset is None:
            return
        sc = batch.scales[asset.symbol]
        price = from_fixed(ev.price, sc.price_scale)
        qty = from_fixed(ev.quantity, sc.qty_scale)
        value = fill_cash(qty, price, asset.currency)
        at = utc_from_ns(ev.ts or 0)
        taker_side = Side(ev.taker_side)
        maker_user, taker_user = _uuid(ev.maker_user_id), _uuid(ev.taker_user_id)
        inserted = (
            await s.execute(
                insert(Fill)
                .values(
                    id=ev.fill_id,
                    asset_id=asset.symbol,
                    price=price,
                    quantity=qty,
                    value=value,
                    currency=asset.currency,
                    maker_order_id=_uuid(ev.maker_order_id),
                    taker_order_id=_uuid(ev.taker_order_id),
                    maker_user_id=maker_user,
                    taker_user_id=taker_user,
                    taker_side=taker_side,
                    executed_at=at,
                )
                .on_conflict_do_nothing(index_elements=[Fill.id])
                .returning(Fill.id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            return  # applied before

        sides = (
            (batch.order(ev.taker_order_id), taker_user, taker_side, bool(ev.taker_done)),
            (
                batch.order(ev.maker_order_id),
                maker_user,
                Side.SELL if taker_side is Side.BUY else Side.BUY,
                bool(ev.maker_done),
            ),
        )
        legs: list[Leg] = []
        for order, user, side, _done in sides:
            if order is None or user is None:  # the liquidity provider (or a foreign order)
                cash_acct = await self._lp_account(s, asset.currency)
                share_acct = await self._lp_account(s, asset.symbol)
            else:
                cash_acct = await self._ledger.account_id(s, user, AccountKind.CASH, asset.currency)
                share_acct = await self._ledger.account_id(
                    s, user, AccountKind.SHARES, asset.symbol
                )
                if order.hold_id is not None:
                    used = value if side is Side.BUY else qty
                    if used > 0:
                        await self._ledger.consume_hold_part(s, order.hold_id, used)
            sign = 1 if side is Side.BUY else -1
            if value:
                legs.append(Leg(cash_acct, asset.currency, -sign * value))
            legs.append(Leg(share_acct, asset.symbol, sign * qty))
        await self._ledger.post(
            s,
            "trade",
            legs,
            user_id=taker_user,
            reference_id=uuid.uuid5(FILL_NAMESPACE, str(ev.fill_id)),
        )

        fill = FillView(id=str(ev.fill_id), quantity=plain(qty), price=plain(price), timestamp=at)
        for order, user, side, done in sides:
            if order is None or user is None:
                continue
            order.filled_quantity += qty
            order.filled_value += price * qty
            order.updated_at = utcnow()
            if done:
                order.status = OrderStatus.EXECUTED
                order.executed_at = at
                if order.hold_id is not None:
                    await self._ledger.release_hold(s, order.hold_id)
            else:
                order.status = OrderStatus.PARTIALLY_FILLED
            if self._on_fill is not None:
                await self._positions(s, user, asset.symbol, side, qty, price, value, ev, at)
            batch.notices.append(
                Notice(
                    order.user_id,
                    "FILL" if done else "PARTIAL_FILL",
                    OrderView.of(order),
                    fill,
                )
            )

    async def _positions(
        self,
        s: AsyncSession,
        user: uuid.UUID,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        value: Decimal,
        ev: FillEvent,
        at: datetime,
    ) -> None:
        """Positions and tax lots (derived data) in a savepoint: if they disagree with the
        ledger (which they never should), the money still settles and the problem is logged
        loudly instead of stopping settlement for everyone."""
        assert self._on_fill is not None
        try:
            async with s.begin_nested():
                await self._on_fill(
                    s,
                    user_id=user,
                    asset_id=symbol,
                    side=str(side),
                    quantity=qty,
                    price=price,
                    fill_id=str(ev.fill_id),
                    executed_at=at,
                    cash_amount=value,
                )
        except DomainError as exc:
            log.error(
                "position out of step with the ledger",
                user_id=str(user),
                asset_id=symbol,
                fill_id=ev.fill_id,
                error=str(exc),
            )

    async def _end(self, s: AsyncSession, batch: _Batch, ev: OrderEndEvent) -> None:
        order = batch.order(ev.order_id)
        if order is None or order.status in FINAL_STATUSES:
            return
        if isinstance(ev, CancelledEvent):
            kind = order.status = OrderStatus.CANCELLED
            order.cancel_reason = str(ev.reason or "USER")
        elif isinstance(ev, ExpiredEvent):
            kind = order.status = OrderStatus.EXPIRED
        else:
            kind = order.status = OrderStatus.REJECTED
            order.reject_reason = str(ev.reason or "REJECTED")
        order.updated_at = utcnow()
        if order.hold_id is not None:
            await self._ledger.release_hold(s, order.hold_id)
        batch.notices.append(Notice(order.user_id, str(kind), OrderView.of(order)))
