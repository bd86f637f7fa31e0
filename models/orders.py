"""Orders: the durable record of what users asked the exchange to do, and its fills.

``placeOrder`` (``OrderBook.place``) validates, then in ONE PostgreSQL transaction inserts the
order, places its hold (buy: cash; sell: shares) and writes an outbox row with the matching
command. Commit makes the order durable; the command is then sent to the asset's shard by the
request itself, and by the outbox relay (``workers/settlement.py``) for anything left unsent by a
crash. Order state after that changes only in the settlement consumer (``models/settlement.py``),
from the shard's events.

Rules where the exchange needs help from the broker:

- A buy's hold must cover every fill, so a buy never reaches the engine as an order that could
  trade at an unknown price: a MARKET buy by quantity goes as a LIMIT IOC (FOK if FOK) at the
  collar cap ``reference x (1 + collar)`` rounded down to the tick, and its hold is quantity x
  that cap; a STOP_LOSS buy goes as a STOP_LIMIT with the same cap over its stop price. A MARKET
  buy by notional holds exactly the notional (the engine spends at most that much).
- A sell by notional (market only) becomes a quantity: notional / reference, rounded down to the
  asset's quantity increment.
- Cash of a fill is price x quantity rounded DOWN to the currency's minor unit (ROUND_DOWN): the
  buyer pays and the seller receives the same amount, and the sum of a buy's fills can never
  exceed its hold (quantity x limit, rounded UP).
- Market hours: an order that must execute now (MARKET, IOC, FOK) is refused with
  ``MARKET_CLOSED`` while its market is closed; a resting order (LIMIT or stop, GTC or DAY) is
  accepted and queued: its outbox row becomes available at the next open.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Enum,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import now_ns, utcnow
from bourse.money import MINOR_UNITS, round_cash
from matching.codec import to_fixed
from matching.wire import cancel as cancel_command
from matching.wire import new_order
from models import pagination
from models.assets import SYMBOL_RE, Asset
from models.base import Base, uuid_pk
from models.calendars import calendar
from models.errors import DomainError, ErrorCode, Problem
from models.exchange import Exchange, scales
from models.ledger import AMOUNT, ZERO, AccountKind, Ledger

log = structlog.get_logger("bourse.orders")
MAX_QUANTITY = Decimal(10) ** 9
MAX_NOTIONAL = Decimal(10) ** 9
CLIENT_ORDER_ID_RE = re.compile(r"[\x21-\x7e]{1,64}\Z")
LIQUIDITY_PROVIDER = "liquidity-provider"  # the user id the liquidity provider trades under


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderSubType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_LIMIT = "STOP_LIMIT"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    DAY = "DAY"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    EXECUTED = "EXECUTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED})
FINAL_STATUSES = frozenset(OrderStatus) - OPEN_STATUSES


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.symbol"))
    side: Mapped[Side] = mapped_column(Enum(Side, name="order_side", native_enum=True))
    sub_type: Mapped[OrderSubType] = mapped_column(
        Enum(OrderSubType, name="order_sub_type", native_enum=True)
    )
    time_in_force: Mapped[TimeInForce] = mapped_column(
        Enum(TimeInForce, name="time_in_force", native_enum=True)
    )
    quantity: Mapped[Decimal | None] = mapped_column(AMOUNT)
    notional: Mapped[Decimal | None] = mapped_column(AMOUNT)
    price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    stop_price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, name="order_status", native_enum=True), default=OrderStatus.PENDING
    )
    filled_quantity: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    # Exact sum of price x quantity over the fills (the average price's numerator).
    filled_value: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    reject_reason: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    hold_id: Mapped[uuid.UUID | None]
    queued_until: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    triggered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    executed_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_orders_client_order_id",
            "user_id",
            "client_order_id",
            unique=True,
            postgresql_where=text("client_order_id IS NOT NULL"),
        ),
        Index("ix_orders_user_created", "user_id", "created_at", "id"),
    )

    @property
    def average_price(self) -> Decimal | None:
        if not self.filled_quantity:
            return None
        return self.filled_value / self.filled_quantity

    @property
    def remaining_quantity(self) -> Decimal | None:
        if self.status in FINAL_STATUSES:
            return ZERO
        if self.quantity is None:
            return None
        return self.quantity - self.filled_quantity


class Fill(Base):
    __tablename__ = "fills"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)  # the engine's fill id
    asset_id: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(AMOUNT)
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    value: Mapped[Decimal] = mapped_column(AMOUNT)  # the cash moved
    currency: Mapped[str] = mapped_column(String(3))
    maker_order_id: Mapped[str] = mapped_column(String(64))
    taker_order_id: Mapped[str] = mapped_column(String(64))
    maker_user_id: Mapped[uuid.UUID | None]
    taker_user_id: Mapped[uuid.UUID | None]
    taker_side: Mapped[Side] = mapped_column(Enum(Side, name="order_side", native_enum=True))
    executed_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_fills_maker_order_id", "maker_order_id"),
        Index("ix_fills_taker_order_id", "taker_order_id"),
        Index("ix_fills_asset_executed", "asset_id", "executed_at"),
    )


class OutboxEntry(Base):
    """A command for a matching shard, written in the transaction that made it necessary."""

    __tablename__ = "order_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID]
    asset_id: Mapped[str] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(Text)
    available_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_order_outbox_unsent", "available_at", postgresql_where=text("sent_at IS NULL")),
        Index("ix_order_outbox_order", "order_id"),
    )


@dataclass(frozen=True, slots=True)
class PlaceOrderRequest:
    asset_id: str
    side: Side
    sub_type: OrderSubType
    time_in_force: TimeInForce = TimeInForce.GTC
    quantity: str | None = None
    notional: str | None = None
    price: str | None = None
    stop_price: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: Sequence[Order]
    has_next_page: bool


@dataclass(frozen=True)
class OrdersConfig:
    price_band_bps: int = 5000  # a limit/stop price more than 50% from the market is refused
    market_hours: str = "calendar"  # "calendar" or "always" (demo: trade equities any time)
    cancel_wait_seconds: float = 2.0


def encode_cursor(order: Order) -> str:
    return pagination.encode_cursor(order.created_at, order.id)


def _number(raw: str | None, field: str, code: ErrorCode, what: str) -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise DomainError.one(code, f"{what} must be a decimal number.", field) from None
    if not value.is_finite() or value <= 0:
        raise DomainError.one(code, f"{what} must be positive.", field)
    return value


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a validated request becomes: the stored order, its hold, the engine command."""

    quantity: Decimal | None
    notional: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    hold_kind: AccountKind
    hold_asset: str
    hold_amount: Decimal
    engine_type: str
    engine_tif: str
    engine_price: Decimal | None
    engine_stop: Decimal | None


def plan_order(
    req: PlaceOrderRequest, asset: Asset, reference: Decimal, config: OrdersConfig
) -> _Plan:
    """Validate ``req`` against ``asset`` at market price ``reference``; pure (no I/O)."""
    sub, side, tif = req.sub_type, req.side, req.time_in_force
    quantity = _number(req.quantity, "quantity", ErrorCode.INVALID_QUANTITY, "The quantity")
    notional = _number(req.notional, "notional", ErrorCode.INVALID_QUANTITY, "The notional")
    price = _number(req.price, "price", ErrorCode.INVALID_PRICE, "The price")
    stop = _number(req.stop_price, "stopPrice", ErrorCode.INVALID_PRICE, "The stop price")

    if (quantity is None) == (notional is None):
        raise DomainError.one(
            ErrorCode.INVALID_QUANTITY, "Give exactly one of quantity and notional.", "quantity"
        )
    if notional is not None:
        if sub is not OrderSubType.MARKET:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY, "A notional amount is for market orders.", "notional"
            )
        if tif is TimeInForce.FOK:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY, "A notional order cannot be fill-or-kill.", "notional"
            )
        if notional > MAX_NOTIONAL or round_cash(notional, asset.currency, ROUND_DOWN) != notional:
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY,
                f"The notional must be at most {MAX_NOTIONAL} with at most "
                f"{MINOR_UNITS.get(asset.currency, 2)} decimals.",
                "notional",
            )
    if quantity is not None:
        step = asset.quantity_increment
        if quantity > MAX_QUANTITY or not _on_grid(quantity, step):
            what = "a multiple of " + str(step.normalize()) if asset.fractionable else "whole"
            raise DomainError.one(
                ErrorCode.INVALID_QUANTITY,
                f"The quantity must be {what}"
                + ("" if asset.fractionable else f" ({asset.symbol} is not fractionable)")
                + ".",
                "quantity",
            )

    needs_price = sub in (OrderSubType.LIMIT, OrderSubType.STOP_LIMIT)
    needs_stop = sub in (OrderSubType.STOP_LOSS, OrderSubType.STOP_LIMIT)
    if needs_price and price is None:
        raise DomainError.one(ErrorCode.INVALID_PRICE, f"A {sub} order needs a price.", "price")
    if not needs_price and price is not None:
        raise DomainError.one(ErrorCode.INVALID_PRICE, f"A {sub} order takes no price.", "price")
    if needs_stop and stop is None:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE, f"A {sub} order needs a stop price.", "stopPrice"
        )
    if not needs_stop and stop is not None:
        raise DomainError.one(
            ErrorCode.INVALID_PRICE, f"A {sub} order takes no stop price.", "stopPrice"
        )
    band = Decimal(config.price_band_bps) / Decimal(10_000)
    for value, field in ((price, "price"), (stop, "stopPrice")):
        if value is None:
            continue
        if not _on_grid(value, asset.tick_size):
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"Prices of {asset.symbol} are multiples of {asset.tick_size.normalize()}.",
                field,
            )
        if abs(value - reference) > reference * band:
            raise DomainError.one(
                ErrorCode.INVALID_PRICE,
                f"The price is more than {config.price_band_bps / 100:g}% away from the "
                f"market ({reference.normalize()}).",
                field,
            )

    collar = Decimal(asset.collar_bps) / Decimal(10_000)
    engine_type, engine_tif = str(sub), str(tif)
    engine_price, engine_stop = price, stop
    if side is Side.SELL:
        if notional is not None:
            quantity = _floor(notional / reference, asset.quantity_increment)
            if quantity <= 0:
                raise DomainError.one(
                    ErrorCode.INVALID_QUANTITY,
                    "The notional is worth less than the smallest quantity.",
                    "notional",
                )
            notional = None
        assert quantity is not None
        return _Plan(
            quantity,
            None,
            price,
            stop,
            AccountKind.SHARES,
            asset.symbol,
            quantity,
            engine_type,
            engine_tif,
            engine_price,
            engine_stop,
        )

    # BUY: the hold must cover the worst fill.
    if notional is not None:
        hold = notional
    elif sub is OrderSubType.MARKET:
        assert quantity is not None
        engine_price = _floor(reference * (1 + collar), asset.tick_size)
        engine_type = OrderSubType.LIMIT
        engine_tif = TimeInForce.FOK if tif is TimeInForce.FOK else TimeInForce.IOC
        hold = round_cash(quantity * engine_price, asset.currency, ROUND_CEILING)
    elif sub is OrderSubType.STOP_LOSS:
        assert quantity is not None
        assert stop is not None
        engine_price = _floor(stop * (1 + collar), asset.tick_size)
        engine_type = OrderSubType.STOP_LIMIT
        hold = round_cash(quantity * engine_price, asset.currency, ROUND_CEILING)
    else:
        assert quantity is not None
        assert price is not None
        hold = round_cash(quantity * price, asset.currency, ROUND_CEILING)
    return _Plan(
        quantity,
        notional,
        price,
        stop,
        AccountKind.CASH,
        asset.currency,
        hold,
        engine_type,
        engine_tif,
        engine_price,
        engine_stop,
    )


def engine_command(
    order_id: uuid.UUID, user_id: uuid.UUID, asset: Asset, plan: _Plan, side: Side
) -> dict[str, Any]:
    s = scales(asset)
    return dict(
        new_order(
            str(order_id),
            str(user_id),
            asset.symbol,
            str(side),
            plan.engine_type,
            plan.engine_tif,
            ts=now_ns(),
            quantity=None if plan.quantity is None else to_fixed(plan.quantity, s.qty_scale),
            notional=None if plan.notional is None else to_fixed(plan.notional, s.price_scale),
            price=None if plan.engine_price is None else to_fixed(plan.engine_price, s.price_scale),
            stop_price=None
            if plan.engine_stop is None
            else to_fixed(plan.engine_stop, s.price_scale),
        )
    )


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
    ) -> None:
        self._clock = clock
        self._sent_ids: list[int] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sm = sessionmaker
        self._ledger = ledger
        self._exchange = exchange
        self._reference_price = reference_price
        self.config = config

    def _market_open(self, asset: Asset, at: datetime) -> bool:
        return self.config.market_hours == "always" or calendar(asset.market_calendar).is_open(at)

    async def place(self, user_id: uuid.UUID, req: PlaceOrderRequest) -> Order:
        symbol = req.asset_id.strip().upper()
        if req.client_order_id is not None and not CLIENT_ORDER_ID_RE.match(req.client_order_id):
            raise DomainError.one(
                ErrorCode.INVALID_INPUT,
                "A client order id is 1-64 printable characters without spaces.",
                "clientOrderId",
            )
        # One session, one transaction: the asset is read where the order is written.
        async with self._sm() as s:
            try:
                async with s.begin():
                    order, outbox, command = await self._place_in(s, user_id, symbol, req)
            except IntegrityError as exc:
                if "uq_orders_client_order_id" in str(exc.orig):
                    raise DomainError.one(
                        ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                        "You already used this client order id.",
                        "clientOrderId",
                    ) from None
                raise
        if outbox.available_at <= outbox.created_at:
            await self._exchange.send([command])
            self._mark_sent(outbox.id)
        return order

    async def _place_in(
        self, s: AsyncSession, user_id: uuid.UUID, symbol: str, req: PlaceOrderRequest
    ) -> tuple[Order, OutboxEntry, dict[str, Any]]:
        asset = await s.get(Asset, symbol) if SYMBOL_RE.match(symbol) else None
        if asset is None:
            raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol!r}.", "assetId")
        if not asset.tradable:
            raise DomainError.one(
                ErrorCode.ASSET_NOT_TRADABLE, f"{symbol} is not tradable now.", "assetId"
            )
        reference = await self._reference_price(asset)
        plan = plan_order(req, asset, reference, self.config)

        now = self._clock()
        available_at = now
        if not self._market_open(asset, now):
            immediate = req.sub_type is OrderSubType.MARKET or req.time_in_force in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            )
            if immediate:
                opens = calendar(asset.market_calendar).next_open(now)
                raise DomainError.one(
                    ErrorCode.MARKET_CLOSED,
                    f"The {symbol} market is closed; it opens {opens.isoformat()}. Market, IOC "
                    "and FOK orders need an open market; a limit order would wait for the open.",
                    "timeInForce",
                )
            available_at = calendar(asset.market_calendar).next_open(now)

        order_id = uuid.uuid4()
        command = engine_command(order_id, user_id, asset, plan, req.side)
        account = await self._ledger.account_id(s, user_id, plan.hold_kind, plan.hold_asset)
        try:
            hold_id = await self._ledger.place_hold(
                s, account, plan.hold_amount, "order", user_id=user_id, reference_id=order_id
            )
        except DomainError:
            raise _insufficient(req.side, plan, asset) from None
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
            currency=asset.currency,
            status=OrderStatus.PENDING,
            filled_quantity=ZERO,
            filled_value=ZERO,
            client_order_id=req.client_order_id,
            hold_id=hold_id,
            queued_until=available_at if available_at > now else None,
            created_at=now,
            updated_at=now,
        )
        s.add(order)
        outbox = OutboxEntry(
            order_id=order_id,
            asset_id=symbol,
            command=json.dumps(command, sort_keys=True, separators=(",", ":")),
            available_at=available_at,
            created_at=now,
        )
        s.add(outbox)
        await s.flush()
        return order, outbox, command

    def _mark_sent(self, outbox_id: int) -> None:
        """Record that the API sent this row itself: written in batches (one UPDATE every
        few ms for all requests), off the request's path. A mark lost to a crash only means the
        relay sends the command again, which the shard ignores."""
        self._sent_ids.append(outbox_id)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_sent())

    async def _flush_sent(self) -> None:
        while self._sent_ids:
            await asyncio.sleep(MARK_SENT_BATCH_SECONDS)
            ids, self._sent_ids = self._sent_ids, []
            try:
                async with self._sm() as s, s.begin():
                    await s.execute(
                        update(OutboxEntry)
                        .where(OutboxEntry.id.in_(ids))
                        .values(sent_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:
                log.warning("could not mark outbox rows sent", rows=len(ids), error=str(exc))

    async def aclose(self) -> None:
        """Write the pending sent-marks (at shutdown)."""
        if self._flusher is not None and not self._flusher.done():
            await self._flusher

    async def cancel(self, user_id: uuid.UUID, order_id: str) -> Order:
        ident = _uuid(order_id)
        async with self._sm() as s, s.begin():
            order = await s.get(Order, ident) if ident else None
            if order is None or order.user_id != user_id:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such order.", "id")
            # Lock order: the hold's account, then the order (the settlement's order too).
            if order.hold_id is not None:
                hold_account = await self._ledger.hold_account(s, order.hold_id)
                if hold_account is not None:
                    await self._ledger.lock(s, [hold_account])
            await s.refresh(order, with_for_update=True)
            if order.status in FINAL_STATUSES:
                raise DomainError.one(
                    ErrorCode.NOT_CANCELLABLE, f"The order is already {order.status}.", "id"
                )
            now = self._clock()
            if order.queued_until is not None and order.queued_until > now:
                # Still waiting for the open: if the relay has not taken it, it never will.
                queued = (
                    await s.execute(
                        select(OutboxEntry)
                        .where(
                            OutboxEntry.order_id == order.id,
                            OutboxEntry.sent_at.is_(None),
                            OutboxEntry.available_at > now,
                        )
                        .with_for_update()
                    )
                ).scalar_one_or_none()
                if queued is not None:
                    queued.sent_at = now  # consumed: never to be sent
                    order.status = OrderStatus.CANCELLED
                    order.cancel_reason = "USER"
                    order.updated_at = now
                    if order.hold_id is not None:
                        await self._ledger.release_hold(s, order.hold_id)
                    return order
            command = dict(cancel_command(str(order.id), order.asset_id, ts=now_ns()))
            s.add(
                OutboxEntry(
                    order_id=order.id,
                    asset_id=order.asset_id,
                    command=json.dumps(command, sort_keys=True, separators=(",", ":")),
                    available_at=now,
                    created_at=now,
                )
            )
            order.cancel_requested_at = now
        await self._exchange.send([command])
        # The order ends CANCELLED when the shard's event is settled (milliseconds): wait a
        # little so the answer shows the final state; a late one still arrives on orderUpdates.
        return await self._await_final(order.id, self.config.cancel_wait_seconds)

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

    async def fills_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Fill]]:
        """Fills of several orders in one query (the per-request dataloader's batch)."""
        keys = [str(i) for i in order_ids]
        found: dict[uuid.UUID, list[Fill]] = {i: [] for i in order_ids}
        if not keys:
            return found
        async with self._sm() as s:
            rows = await s.scalars(
                select(Fill)
                .where(or_(Fill.maker_order_id.in_(keys), Fill.taker_order_id.in_(keys)))
                .order_by(Fill.executed_at, Fill.id)
            )
            for f in rows:
                for key in (f.maker_order_id, f.taker_order_id):
                    ident = _uuid(key)
                    if ident in found:
                        found[ident].append(f)
        return found


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def _insufficient(side: Side, plan: _Plan, asset: Asset) -> DomainError:
    if side is Side.SELL:
        return DomainError(
            Problem(
                ErrorCode.INSUFFICIENT_SHARES,
                f"You do not have {plan.hold_amount.normalize()} {asset.symbol} available to sell.",
                "quantity",
            )
        )
    return DomainError(
        Problem(
            ErrorCode.INSUFFICIENT_BUYING_POWER,
            f"This order needs {plan.hold_amount} {asset.currency} of buying power.",
            "quantity" if plan.notional is None else "notional",
        )
    )


def utc_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC) if ns else utcnow()


RELAY_GRACE = timedelta(seconds=2)
MARK_SENT_BATCH_SECONDS = 0.02
