"""The order service (``OrderBook``): placing, cancelling and reading users' orders.

``place`` validates (``models.orders.rules.plan_order``), then in ONE PostgreSQL transaction
reads the asset and, in one statement (``models.orders.placement``), places the order's hold
(buy: cash; sell: shares), inserts the order and writes its outbox row with the matching
command (``models.orders.outbox``). Commit makes the order durable; the command is then
sent to the asset's shard by the request itself, and by the outbox relay for anything left
unsent by a crash. A simple order on an asset this process has placed on before (and a hold
account it has seen) skips the transaction: ``models.orders.direct`` plans it on the row as
that placement read it and writes it in one round trip, the statement itself checking the
row, its lock and the KYC gate; other orders, and requests the plan refuses, take the
transaction. Order state after that changes only in the settlement consumer
(``models/settlement.py``), from the shard's events.

``replace`` (``replaceOrder``) validates the new terms (``rules.plan_replace``), then in ONE
transaction, under the hold's account lock and the order's row lock: grows the hold when the
new terms need more (``Ledger.grow_hold``: never beyond the available balance), records the
request (``order_replacements``, at most one pending per order) and writes the REPLACE
command to the outbox. The shard applies it atomically; the settlement then applies REPLACED
(the order's new terms; the hold trimmed to exactly what the remaining quantity needs) or
REPLACE_REJECTED (the order unchanged; the hold back to what it needs), in the same stream
order as the order's fills.

Market hours: an order that must execute now (MARKET, IOC, FOK) is refused with
``MARKET_CLOSED`` while its market is closed; a resting order (LIMIT or stop, GTC or DAY) is
accepted and queued: its outbox row becomes available at the next open. A LIMIT order with
``extended_hours`` counts the pre-market and after-hours sessions as open
(``models.calendars.Session``): placed then, it goes to the engine at once; placed while every
session is closed, it waits for the next pre-market (04:00 New York) instead of the regular
open. Its DAY lifetime ends with after-hours (``workers.settlement.DayExpiry``).

Stock splits: both ``place`` and ``replace`` read the asset row ``FOR KEY SHARE`` first (before
any ledger account: the split's lock order, asset then accounts), and stamp its
``split_seq`` on their command. A split takes the row ``FOR UPDATE``, so it waits for the
placements in flight and they for it: a placement either commits before the split reads the
open orders (the split rewrites its row, its hold and its unsent command; a command already on
its way arrives stamped with the old count and the engine adjusts it the same way), or it sees
``splitting`` and is refused. The lock conflicts with nothing else (every other writer of the
asset row takes ``FOR NO KEY UPDATE``), so placements do not wait for one another.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
import structlog
from sqlalchemy import String, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import now_ns, utcnow
from matching.wire import cancel as cancel_command
from models import pagination
from models.assets import SYMBOL_RE, Asset
from models.availability import is_unavailable
from models.calendars import Session, calendar
from models.constraints import violated_constraint
from models.errors import DomainError, ErrorCode
from models.exchange import Exchange
from models.kyc_gate import kyc_required, require_verified
from models.ledger import ZERO, Ledger
from models.orders.direct import DirectPlacement, Outcome, fingerprint_sql
from models.orders.linked import (
    LinkedPlan,
    StopLoss,
    TakeProfit,
    leg_specs,
    legs_hold_id,
    plan_linked,
)
from models.orders.outbox import Outbox, OutboxEntry
from models.orders.placement import write_order
from models.orders.rules import (
    CLIENT_ORDER_ID_RE,
    OrderPlan,
    OrdersConfig,
    PlaceOrderRequest,
    ReplaceOrderRequest,
    engine_command,
    insufficient,
    plan_order,
    plan_replace,
    replace_command,
)
from models.orders.tables import (
    FINAL_STATUSES,
    Fill,
    Order,
    OrderClass,
    OrderReplacement,
    OrderStatus,
    OrderSubType,
    ReplaceStatus,
    Side,
    TimeInForce,
)

CLIENT_ORDER_ID_CONSTRAINT = "uq_orders_client_order_id"
# The asset row as placements and replaces read it: FOR KEY SHARE (see the module docstring).
ASSET_LOCK: dict[str, bool] | None = {"read": True, "key_share": True}

log = structlog.get_logger("bourse.orders")


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: Sequence[Order]
    has_next_page: bool


def encode_cursor(order: Order) -> str:
    return pagination.encode_cursor(order.created_at, order.id)


class OrderBook:
    """Placing, cancelling and reading users' orders."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        exchange: Exchange,
        reference_price: Callable[[Asset], Awaitable[Decimal]],
        config: OrdersConfig,
        clock: Callable[[], datetime] = utcnow,
        direct: DirectPlacement | None = None,
    ) -> None:
        self.clock = clock  # tests pin it (the in-process API's order book)
        self._sm = sessionmaker
        self._direct = direct
        self._ledger = ledger
        self.outbox = Outbox(sessionmaker, exchange)
        self._reference_price = reference_price
        self.config = config

    def market_open(self, asset: Asset, at: datetime, *, extended: bool = False) -> bool:
        """Whether orders that must execute now (MARKET, IOC, FOK) are taken at ``at``
        (``extended``: an extended-hours order, for which pre-market and after-hours count)."""
        if self.config.market_hours == "always":
            return True
        market = calendar(asset.market_calendar)
        return market.session(at) is not Session.CLOSED if extended else market.is_open(at)

    async def place(
        self,
        user_id: uuid.UUID,
        req: PlaceOrderRequest,
        take_profit: TakeProfit | None = None,
        stop_loss: StopLoss | None = None,
    ) -> Order:
        """Place an order (a contingent one with ``take_profit`` / ``stop_loss``: its legs are
        rows of their own, written in the same transaction, sent in the entry's command)."""
        symbol = req.asset_id.strip().upper()
        if req.client_order_id is not None and not CLIENT_ORDER_ID_RE.match(req.client_order_id):
            raise DomainError.one(
                ErrorCode.INVALID_INPUT,
                "A client order id is 1-64 printable characters without spaces.",
                "clientOrderId",
            )
        order_outbox = None
        if take_profit is None and stop_loss is None and req.order_class is OrderClass.SIMPLE:
            order_outbox = await self._place_direct(user_id, symbol, req)
        if order_outbox is not None:
            order, outbox = order_outbox
            if outbox.available_at <= outbox.created_at:
                await self._send_after_commit(outbox)
            return order
        # One session, one transaction: the asset is read where the order is written.
        async with self._sm() as s:
            try:
                async with s.begin():
                    order, outbox = await self._place_in(
                        s, user_id, symbol, req, take_profit, stop_loss
                    )
                planned_on = s.info.pop("planned_on", None)
                if planned_on is not None and self._direct is not None:
                    self._direct.snapshots.put(*planned_on)
            except IntegrityError as exc:
                if violated_constraint(exc) == CLIENT_ORDER_ID_CONSTRAINT:
                    raise DomainError.one(
                        ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                        "You already used this client order id.",
                        "clientOrderId",
                    ) from None
                raise
        if outbox.available_at <= outbox.created_at:
            await self._send_after_commit(outbox)
        return order

    async def _place_direct(
        self, user_id: uuid.UUID, symbol: str, req: PlaceOrderRequest
    ) -> tuple[Order, OutboxEntry] | None:
        """A simple order in one round trip (``models.orders.direct``) when this process has
        the asset's row and the user's hold account from an earlier placement; None: place it
        through the ORM transaction (which answers every refusal in its usual order)."""
        if self._direct is None:
            return None
        snap = self._direct.snapshots.get(symbol)
        if snap is None or not snap.asset.tradable or snap.asset.splitting:
            return None
        try:
            order, outbox, plan, _, _ = await self._plan(user_id, symbol, req, snap.asset)
        except DomainError:
            return None  # refused: the transaction says why, KYC first
        account = self._ledger.cached_account_id(user_id, plan.hold_kind, plan.hold_asset)
        if account is None:
            return None
        try:
            outcome = await self._direct.place(
                order,
                outbox,
                account_id=account,
                hold_amount=plan.hold_amount,
                fingerprint=snap.fingerprint,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == CLIENT_ORDER_ID_CONSTRAINT:
                raise DomainError.one(
                    ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                    "You already used this client order id.",
                    "clientOrderId",
                ) from None
            raise
        except Exception as exc:
            # The one-trip pool is a shortcut: if it cannot reach PostgreSQL (its own DSN
            # handling, a failover it has not followed yet), the transaction places the
            # order, or answers SERVICE_UNAVAILABLE when PostgreSQL is really down.
            if not is_unavailable(exc):
                raise
            log.warning(
                "one-trip placement unavailable; placing through the transaction", error=str(exc)
            )
            return None
        if outcome == Outcome.PLACED:
            return order, outbox
        if outcome == Outcome.KYC_REQUIRED:
            raise kyc_required("trade")
        if outcome == Outcome.INSUFFICIENT:
            raise insufficient(req.side, plan, snap.asset)
        self._direct.snapshots.forget(symbol)  # changed: the transaction reads it again
        return None

    async def _send_after_commit(self, row: OutboxEntry) -> bool:
        """Send a committed row now; if Redis cannot be reached the change still stands (it
        is durable) and the relay sends it once Redis is back. False when not sent."""
        try:
            await self.outbox.send_now(row)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("exchange unreachable; the relay will send", order_id=str(row.order_id))
            return False
        return True

    async def _place_in(
        self,
        s: AsyncSession,
        user_id: uuid.UUID,
        symbol: str,
        req: PlaceOrderRequest,
        take_profit: TakeProfit | None = None,
        stop_loss: StopLoss | None = None,
    ) -> tuple[Order, OutboxEntry]:
        await require_verified(s, user_id, "trade")  # KYC (models/kyc.py), in this transaction
        asset, fingerprint = await self._read_asset(s, symbol)
        if asset is None:
            raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol!r}.", "assetId")
        if not asset.tradable:
            raise DomainError.one(
                ErrorCode.ASSET_NOT_TRADABLE, f"{symbol} is not tradable now.", "assetId"
            )
        if asset.splitting:
            raise _splitting(symbol)
        order, outbox, plan, linked, leg_ids = await self._plan(
            user_id, symbol, req, asset, take_profit, stop_loss
        )
        account = await self._ledger.account_id(s, user_id, plan.hold_kind, plan.hold_asset)
        # Hold, order and outbox row in one statement (models.orders.placement); the objects
        # stay out of the session: they are the answer, already as written.
        written = await write_order(
            s, order, outbox, account_id=account, hold_amount=plan.hold_amount
        )
        if not written:
            raise insufficient(req.side, plan, asset)
        if self._direct is not None and fingerprint is not None:
            # the row as this order was planned on: once committed, the next orders on it go
            # in one round trip (place)
            s.info["planned_on"] = (asset, fingerprint)
        now, order_id = order.created_at, order.id
        if linked is not None:
            # A bracket's / OTO's exits share one hold of the shares its fills bring (opened
            # by the settlement with the first fill); an OCO's, the order's own.
            shared = order.hold_id if linked.order_class is OrderClass.OCO else None
            for lid, lp in zip(leg_ids, linked.legs, strict=True):
                s.add(
                    Order(
                        id=lid,
                        user_id=user_id,
                        asset_id=symbol,
                        side=lp.side,
                        sub_type=lp.sub_type,
                        time_in_force=linked.leg_tif,
                        quantity=plan.quantity,
                        price=lp.price,
                        stop_price=lp.stop_price,
                        currency=asset.currency,
                        status=OrderStatus.PENDING,
                        filled_quantity=ZERO,
                        filled_value=ZERO,
                        hold_id=shared or legs_hold_id(order_id),
                        queued_until=order.queued_until,
                        order_class=linked.order_class,
                        parent_id=order_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return order, outbox

    async def _read_asset(self, s: AsyncSession, symbol: str) -> tuple[Asset | None, str | None]:
        """The asset row ``FOR KEY SHARE`` (see the module docstring) and the fingerprint of
        its planning columns (``models.orders.direct``), read together."""
        if not SYMBOL_RE.match(symbol):
            return None, None
        query = select(Asset, literal_column(fingerprint_sql("assets"), String)).where(
            Asset.symbol == symbol
        )
        if ASSET_LOCK is not None:  # bench/split_lock.py measures without it
            query = query.with_for_update(read=True, key_share=True)
        row = (await s.execute(query)).one_or_none()
        if row is None:
            return None, None
        return row[0], row[1]

    async def _plan(
        self,
        user_id: uuid.UUID,
        symbol: str,
        req: PlaceOrderRequest,
        asset: Asset,
        take_profit: TakeProfit | None = None,
        stop_loss: StopLoss | None = None,
    ) -> tuple[Order, OutboxEntry, OrderPlan, LinkedPlan | None, list[uuid.UUID]]:
        """The order as it will be written (and its outbox row, plan, linked plan and legs'
        ids), planned on ``asset``; raises the request's refusal."""
        reference = await self._reference_price(asset)
        linked: LinkedPlan | None = None
        if req.order_class is not OrderClass.SIMPLE or take_profit or stop_loss:
            linked = plan_linked(req, take_profit, stop_loss, asset, reference, self.config)
            plan = linked.entry
        else:
            plan = plan_order(req, asset, reference, self.config)

        now = self.clock()
        available_at = now
        extended = req.extended_hours
        if not self.market_open(asset, now, extended=extended):
            immediate = req.sub_type is OrderSubType.MARKET or req.time_in_force in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            )
            opens = calendar(asset.market_calendar).next_open(now, extended=extended)
            if immediate:
                raise DomainError.one(
                    ErrorCode.MARKET_CLOSED,
                    f"The {symbol} market is closed; it opens {opens.isoformat()}. Market, IOC "
                    "and FOK orders need an open market; a limit order would wait for the open.",
                    "timeInForce",
                )
            available_at = opens

        order_id = uuid.uuid4()
        leg_ids = [uuid.uuid4() for _ in (linked.legs if linked else ())]
        command = engine_command(
            order_id,
            user_id,
            asset,
            plan,
            req.side,
            extended_hours=extended,
            order_class=None if linked is None else str(linked.order_class),
            legs=None if linked is None else leg_specs(asset, linked, leg_ids),
        )
        order = Order(
            id=order_id,
            user_id=user_id,
            asset_id=symbol,
            side=req.side,
            sub_type=req.sub_type,
            time_in_force=req.time_in_force,
            quantity=plan.quantity,
            notional=plan.notional,
            price=plan.price,
            stop_price=plan.stop_price,
            trail_percent=plan.trail_percent,
            trail_amount=plan.trail_amount,
            currency=asset.currency,
            status=OrderStatus.PENDING,
            filled_quantity=ZERO,
            filled_value=ZERO,
            client_order_id=req.client_order_id,
            hold_id=uuid.uuid4(),
            queued_until=available_at if available_at > now else None,
            extended_hours=extended,
            order_class=req.order_class,
            created_at=now,
            updated_at=now,
        )
        outbox = Outbox.row(order_id, symbol, command, available_at=available_at, created_at=now)
        return order, outbox, plan, linked, leg_ids

    async def aclose(self) -> None:
        """Write the pending sent-marks (at shutdown); close the one-trip pool."""
        await self.outbox.aclose()
        if self._direct is not None:
            await self._direct.aclose()

    async def cancel(
        self, user_id: uuid.UUID, order_id: str, *, wait_seconds: float | None = None
    ) -> Order:
        """Cancel an open order; waits up to ``wait_seconds`` (default: the configured
        ``cancel_wait_seconds``) for it to become final. 0 answers at once (the FIX gateway:
        its partner hears the end from the order-event log)."""
        ident = _uuid(order_id)
        async with self._sm() as s, s.begin():
            order = await s.get(Order, ident) if ident else None
            if order is None or order.user_id != user_id:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such order.", "id")
            # Lock order: the hold's account, then the order (the settlement's order too). A
            # linked order's group may hold on its root's account (a bracket leg's own hold
            # opens with the entry's first fill).
            root = order.parent_id or order.id
            root_hold = order.hold_id
            if order.parent_id is not None:
                root_hold = await s.scalar(select(Order.hold_id).where(Order.id == root))
            accounts = set()
            for hold_id in {order.hold_id, root_hold} - {None}:
                assert hold_id is not None
                hold_account = await self._ledger.hold_account(s, hold_id)
                if hold_account is not None:
                    accounts.add(hold_account)
            if accounts:
                await self._ledger.lock(s, accounts)
            await s.refresh(order, with_for_update=True)
            if order.status in FINAL_STATUSES:
                raise DomainError.one(
                    ErrorCode.NOT_CANCELLABLE, f"The order is already {order.status}.", "id"
                )
            now = self.clock()
            if order.queued_until is not None and order.queued_until > now:
                # Still waiting for the open: if the relay has not taken it, it never will.
                queued = (
                    await s.execute(
                        select(OutboxEntry)
                        .where(
                            OutboxEntry.order_id == root,
                            OutboxEntry.sent_at.is_(None),
                            OutboxEntry.available_at > now,
                        )
                        .with_for_update()
                    )
                ).scalar_one_or_none()
                if queued is not None:
                    queued.sent_at = now  # consumed: never to be sent
                    group = [order]
                    if order.order_class is not OrderClass.SIMPLE:
                        group += (
                            await s.scalars(
                                select(Order)
                                .where(
                                    or_(Order.id == root, Order.parent_id == root),
                                    Order.id != order.id,
                                )
                                .order_by(Order.id)
                                .with_for_update()
                            )
                        ).all()
                    holds = set()
                    for o in group:
                        o.status = OrderStatus.CANCELLED
                        o.cancel_reason = (
                            "USER" if o is order else ("PARENT" if order.id == root else "OCO")
                        )
                        o.updated_at = now
                        if o.hold_id is not None:
                            holds.add(o.hold_id)
                    for hold_id in sorted(holds):
                        await self._ledger.release_hold(s, hold_id)
                    return order
            command = cancel_command(str(order.id), order.asset_id, ts=now_ns())
            row = Outbox.row(order.id, order.asset_id, command, available_at=now, created_at=now)
            s.add(row)
            order.cancel_requested_at = now
        if not await self._send_after_commit(row):
            return order  # still open: the answer says CANCEL_PENDING
        # The order ends CANCELLED when the shard's event is settled (milliseconds): wait a
        # little so the answer shows the final state; a late one still arrives on orderUpdates
        # (the answer then says CANCEL_PENDING, never a silent PENDING).
        wait = self.config.cancel_wait_seconds if wait_seconds is None else wait_seconds
        return await self._await_final(order.id, wait)

    async def replace(self, user_id: uuid.UUID, order_id: str, req: ReplaceOrderRequest) -> Order:
        """Replace an open order's terms; answers with the order once the shard's answer is
        settled (or, after a short wait, as it stands: REPLACED then follows on orderUpdates).
        An order that filled or ended meanwhile: NOT_CANCELLABLE, and nothing changed."""
        ident = _uuid(order_id)
        async with self._sm() as s, s.begin():
            order = await s.get(Order, ident) if ident else None
            if order is None or order.user_id != user_id:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such order.", "id")
            # Lock order: the asset row (a split's lock, then its accounts), the hold's
            # account, then the order (as cancel and the settlement).
            await s.get(Asset, order.asset_id, with_for_update=ASSET_LOCK)
            if order.hold_id is not None:
                hold_account = await self._ledger.hold_account(s, order.hold_id)
                if hold_account is not None:
                    await self._ledger.lock(s, [hold_account])
            await s.refresh(order, with_for_update=True)
            row, replacement = await self._replace_in(s, order, req)
        if not await self._send_after_commit(row):
            return order
        return await self._await_replaced(order.id, replacement.id)

    async def _replace_in(
        self, s: AsyncSession, order: Order, req: ReplaceOrderRequest
    ) -> tuple[OutboxEntry, OrderReplacement]:
        await require_verified(s, order.user_id, "trade")
        if order.status in FINAL_STATUSES:
            raise DomainError.one(
                ErrorCode.NOT_CANCELLABLE, f"The order is already {order.status}.", "id"
            )
        if order.order_class is not OrderClass.SIMPLE:
            raise DomainError.one(
                ErrorCode.INVALID_ORDER_CLASS,
                f"A {order.order_class} order cannot be replaced yet: cancel it and place a "
                "new one.",
                "id",
            )
        now = self.clock()
        if order.queued_until is not None and order.queued_until > now:
            raise DomainError.one(
                ErrorCode.NOT_CANCELLABLE,
                "The order waits for the market to open: cancel it and place a new one.",
                "id",
            )
        pending = await s.scalar(
            select(OrderReplacement.id).where(
                OrderReplacement.order_id == order.id,
                OrderReplacement.status == ReplaceStatus.PENDING,
            )
        )
        if pending is not None:
            raise DomainError.one(
                ErrorCode.NOT_CANCELLABLE, "A replace of this order is still pending.", "id"
            )
        asset = await s.get(Asset, order.asset_id)  # read and locked by ``replace``
        assert asset is not None
        if asset.splitting:
            raise _splitting(asset.symbol)
        planned = plan_replace(order, req, asset, await self._reference_price(asset), self.config)
        held = (
            await self._ledger.hold_amount(s, order.hold_id) if order.hold_id is not None else None
        )
        if held is None or order.hold_id is None:
            raise DomainError.one(ErrorCode.NOT_CANCELLABLE, "The order is ending.", "id")
        more = planned.hold_amount - held
        if more > 0 and not await self._ledger.grow_hold(s, order.hold_id, more):
            raise _insufficient_for_replace(order.side, more, asset)
        tif = req.time_in_force or order.time_in_force
        plan = planned.plan
        assert plan.quantity is not None
        replacement = OrderReplacement(
            id=uuid.uuid4(),
            order_id=order.id,
            user_id=order.user_id,
            quantity=plan.quantity,
            price=plan.price,
            stop_price=plan.stop_price,
            time_in_force=tif,
            trail_percent=plan.trail_percent,
            trail_amount=plan.trail_amount,
            status=ReplaceStatus.PENDING,
            hold_added=max(more, ZERO),
            created_at=now,
        )
        s.add(replacement)
        command = replace_command(order, replacement.id, asset, plan, tif)
        row = Outbox.row(order.id, order.asset_id, command, available_at=now, created_at=now)
        s.add(row)
        return row, replacement

    async def _await_replaced(self, order_id: uuid.UUID, replace_id: uuid.UUID) -> Order:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.cancel_wait_seconds
        while True:
            async with self._sm() as s:
                replacement = await s.get(OrderReplacement, replace_id)
                order = await s.get(Order, order_id)
            assert replacement is not None
            assert order is not None
            if replacement.status == ReplaceStatus.REJECTED:
                raise _replace_rejected(replacement.reason, order)
            if replacement.status == ReplaceStatus.REPLACED or loop.time() > deadline:
                return order
            await asyncio.sleep(0.02)

    async def _await_final(self, order_id: uuid.UUID, seconds: float) -> Order:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            async with self._sm() as s:
                order = await s.get(Order, order_id)
            assert order is not None
            if order.status in FINAL_STATUSES or asyncio.get_running_loop().time() > deadline:
                return order
            await asyncio.sleep(0.02)

    async def get(self, user_id: uuid.UUID, order_id: str) -> Order | None:
        ident = _uuid(order_id)
        if ident is None:
            return None
        async with self._sm() as s:
            order = await s.get(Order, ident)
        return order if order is not None and order.user_id == user_id else None

    async def by_client_order_id(self, user_id: uuid.UUID, client_order_id: str) -> Order | None:
        """The user's order with this id of theirs (an idempotent retry finds its order)."""
        async with self._sm() as s:
            found: Order | None = await s.scalar(
                select(Order).where(
                    Order.user_id == user_id, Order.client_order_id == client_order_id
                )
            )
            return found

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        status: OrderStatus | None = None,
        asset_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> OrderPage:
        limit = max(1, min(first or 20, 100))
        stmt = (
            select(Order)
            .where(Order.user_id == user_id)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit + 1)
        )
        if status is not None:
            stmt = stmt.where(Order.status == status)
        if asset_id:
            wanted = asset_id.strip().upper()
            if not SYMBOL_RE.match(wanted):
                return OrderPage(items=[], has_next_page=False)
            stmt = stmt.where(Order.asset_id == wanted)
        if start is not None:
            stmt = stmt.where(Order.created_at >= start)
        if end is not None:
            stmt = stmt.where(Order.created_at < end)
        if after:
            created, ident = pagination.decode_cursor(after, uuid.UUID)
            stmt = stmt.where(
                or_(
                    Order.created_at < created,
                    (Order.created_at == created) & (Order.id < ident),
                )
            )
        async with self._sm() as s:
            rows = list((await s.scalars(stmt)).all())
        return OrderPage(items=rows[:limit], has_next_page=len(rows) > limit)

    async def legs_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Order]]:
        """The legs of several orders in one query (a bracket's exits, an OCO's stop), in the
        order they were given (take-profit first)."""
        found: dict[uuid.UUID, list[Order]] = {i: [] for i in order_ids}
        if not found:
            return found
        async with self._sm() as s:
            rows = await s.scalars(
                select(Order)
                .where(Order.parent_id.in_(found))
                .order_by(Order.parent_id, Order.sub_type, Order.id)
            )
            for o in rows:
                assert o.parent_id is not None
                found[o.parent_id].append(o)
        return found

    async def fills_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Fill]]:
        """Fills of several orders in one query (the per-request dataloader's batch)."""
        found: dict[uuid.UUID, list[Fill]] = {i: [] for i in order_ids}
        if not found:
            return found
        async with self._sm() as s:
            rows = await s.scalars(
                select(Fill)
                .where(or_(Fill.maker_order_id.in_(found), Fill.taker_order_id.in_(found)))
                .order_by(Fill.executed_at, Fill.id)
            )
            for f in rows:
                for key in (f.maker_order_id, f.taker_order_id):
                    if key is not None and key in found:
                        found[key].append(f)
        return found


def _splitting(symbol: str) -> DomainError:
    """A stock split is reaching the matching engine (seconds): see ``Asset.splitting``."""
    return DomainError.one(
        ErrorCode.ASSET_NOT_TRADABLE,
        f"{symbol} is being split; orders resume in a moment.",
        "assetId",
    )


def _insufficient_for_replace(side: Side, more: Decimal, asset: Asset) -> DomainError:
    if side is Side.SELL:
        return DomainError.one(
            ErrorCode.INSUFFICIENT_SHARES,
            f"You do not have {more.normalize()} more {asset.symbol} available to sell.",
            "quantity",
        )
    return DomainError.one(
        ErrorCode.INSUFFICIENT_BUYING_POWER,
        f"This replace needs {more} {asset.currency} more of buying power.",
        "quantity",
    )


# The shard's reasons for refusing a replace, as the API's codes.
_REPLACE_REASONS = {
    "INVALID_QUANTITY": (ErrorCode.INVALID_QUANTITY, "quantity"),
    "INVALID_PRICE": (ErrorCode.INVALID_PRICE, "price"),
    "INVALID_STOP_PRICE": (ErrorCode.INVALID_PRICE, "stopPrice"),
    "INVALID_TRAIL": (ErrorCode.INVALID_PRICE, "trailPercent"),
    "INVALID_TIF": (ErrorCode.INVALID_INPUT, "timeInForce"),
}


def _replace_rejected(reason: str | None, order: Order) -> DomainError:
    """A replace the shard refused: the order had ended (filled, cancelled) or, more rarely,
    the new terms no longer fit it (more filled meanwhile than the new quantity)."""
    code, field = _REPLACE_REASONS.get(reason or "", (ErrorCode.NOT_CANCELLABLE, "id"))
    if code is ErrorCode.NOT_CANCELLABLE:
        state = order.status if order.status in FINAL_STATUSES else "no longer open"
        return DomainError.one(code, f"The order is {state}: nothing was replaced.", field)
    return DomainError.one(code, f"The exchange refused the new terms ({reason}).", field)


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None
