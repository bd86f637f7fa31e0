"""Positions of the default (brokerage) portfolio: quantity, FIFO tax lots, realized P&L.

Everything here runs inside the caller's transaction and never commits.

- A position is one row per (user, asset): `quantity` (always equal to the user's SHARES
  account in the ledger, which the settlement or the transfer moves in the same transaction),
  `cost_basis` (the cost of the shares still held, i.e. the sum of the open lots' remaining
  cost) and `realized_pnl` (the sum of the realized gains, in the asset's currency).
  `average_cost = cost_basis / quantity`: the FIFO cost of what is left, which is what a
  statement and a tax form show (a sale does not change the average of the lots it leaves).
- Lots: a buy (or a transfer in) opens a lot with its quantity and total cost; a sell consumes
  the oldest lots first (`acquired_at`, then insertion order) and writes one `realized_gains`
  row per consumed lot slice: quantity, cost basis, proceeds, gain, acquired and sold dates.
- Cash amounts (a lot's cost, a sale's proceeds) are in the asset's currency, quantised to the
  currency's minor unit with ROUND_HALF_EVEN: the rule the ledger uses for a fill's cash
  (`fill_cash`); the settlement may pass the exact amount it moved (`cash_amount`). A partly
  consumed lot gives up `remaining_cost * slice / remaining_quantity` (rounded the same way);
  a fully consumed lot gives up all its remaining cost, so no rounding residue is ever left.
  A sale's proceeds are split over its slices the same way, the last slice taking the rest.
- `apply_fill` is idempotent per (fill_id, user_id, side): a unique key on `position_fills`.
- Lock order: the position row (upserted or selected FOR UPDATE) before its lots. Callers post
  the fill's ledger entry first and then call `apply_fill`, so every writer takes ledger
  accounts before position rows (the transfer-in does the same), and none can deadlock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    PrimaryKeyConstraint,
    String,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import fill_cash, round_cash
from models.assets import Asset
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode
from models.ledger import AMOUNT, ZERO
from models.pagination import Page, decode_cursor, page_size

T = TypeVar("T")
K = TypeVar("K")
LONG_TERM = timedelta(days=365)  # held more than a year: long-term (US rule of thumb)


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class LotSource(enum.StrEnum):
    FILL = "FILL"
    TRANSFER = "TRANSFER"


class Position(Base):
    __tablename__ = "positions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    quantity: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    realized_pnl: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "asset_id", name="pk_positions"),
        CheckConstraint("quantity >= 0", name="quantity_nonnegative"),
        CheckConstraint("cost_basis >= 0", name="cost_nonnegative"),
    )


class Lot(Base):
    __tablename__ = "position_lots"

    id: Mapped[uuid.UUID] = uuid_pk()
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))  # FIFO tie-break
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16))
    source: Mapped[LotSource] = mapped_column(Enum(LotSource, name="lot_source", native_enum=True))
    source_id: Mapped[str] = mapped_column(String(128))  # the fill id or the transfer's id
    acquired_at: Mapped[datetime]
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost: Mapped[Decimal] = mapped_column(AMOUNT)
    remaining_quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    remaining_cost: Mapped[Decimal] = mapped_column(AMOUNT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "remaining_quantity >= 0 AND remaining_quantity <= quantity", name="remaining_range"
        ),
        CheckConstraint("remaining_cost >= 0 AND cost >= 0", name="cost_nonnegative"),
        Index(
            "ix_position_lots_open",
            "user_id",
            "asset_id",
            "acquired_at",
            "seq",
            postgresql_where=text("remaining_quantity > 0"),
        ),
        Index("ix_position_lots_user_acquired", "user_id", "acquired_at", "seq"),
    )


class RealizedGain(Base):
    """One consumed lot slice of a sale: what a tax form (1099-B) line is built from."""

    __tablename__ = "realized_gains"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("position_lots.id"))
    fill_id: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT)
    proceeds: Mapped[Decimal] = mapped_column(AMOUNT)
    gain: Mapped[Decimal] = mapped_column(AMOUNT)
    acquired_at: Mapped[datetime]
    sold_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_realized_gains_user_sold", "user_id", "sold_at", "id"),
    )


class PositionFill(Base):
    """Fills applied to positions, one row per user side: the idempotency key."""

    __tablename__ = "position_fills"

    fill_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    side: Mapped[Side] = mapped_column(Enum(Side, name="fill_side", native_enum=True))
    asset_id: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    price: Mapped[Decimal] = mapped_column(AMOUNT)
    cash_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    executed_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("fill_id", "user_id", "side", name="pk_position_fills"),)


async def _currency(s: AsyncSession, asset_id: str) -> str:
    currency = (
        await s.execute(select(Asset.currency).where(Asset.symbol == asset_id))
    ).scalar_one_or_none()
    if currency is None:
        raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {asset_id}.", "assetId")
    return currency


async def open_lot(
    s: AsyncSession,
    *,
    user_id: uuid.UUID,
    asset_id: str,
    quantity: Decimal,
    cost: Decimal,
    acquired_at: datetime,
    source: LotSource,
    source_id: str,
) -> uuid.UUID:
    """Add shares to the position with a new lot (a buy or a transfer in)."""
    if not quantity.is_finite() or quantity <= 0 or not cost.is_finite() or cost < 0:
        raise ValueError(f"a lot has a positive quantity and a cost >= 0: {quantity} {cost}")
    now = utcnow()
    stmt = insert(Position).values(
        user_id=user_id,
        asset_id=asset_id,
        quantity=quantity,
        cost_basis=cost,
        realized_pnl=ZERO,
        created_at=now,
        updated_at=now,
    )
    await s.execute(
        stmt.on_conflict_do_update(
            constraint="pk_positions",
            set_={
                "quantity": Position.quantity + quantity,
                "cost_basis": Position.cost_basis + cost,
                "updated_at": now,
            },
        )
    )
    lot_id = uuid.uuid4()
    s.add(
        Lot(
            id=lot_id,
            user_id=user_id,
            asset_id=asset_id,
            source=source,
            source_id=source_id,
            acquired_at=acquired_at,
            quantity=quantity,
            cost=cost,
            remaining_quantity=quantity,
            remaining_cost=cost,
            created_at=now,
        )
    )
    await s.flush()
    return lot_id


def _split(
    total: Decimal, parts: Sequence[Decimal], whole: Decimal, currency: str
) -> list[Decimal]:
    """`total` shared out over `parts` (summing to `whole`) pro rata, rounded to the minor unit;
    the last part takes the rest so the shares sum to `total` exactly."""
    shares: list[Decimal] = []
    for part in parts[:-1]:
        shares.append(round_cash(total * part / whole, currency, ROUND_HALF_EVEN))
    shares.append(total - sum(shares, ZERO))
    return shares


async def _consume_lots(
    s: AsyncSession,
    *,
    user_id: uuid.UUID,
    asset_id: str,
    currency: str,
    quantity: Decimal,
    proceeds: Decimal,
    fill_id: str,
    sold_at: datetime,
) -> tuple[Decimal, Decimal]:
    """Take `quantity` out of the oldest lots; returns (cost released, realized gain)."""
    position = (
        await s.execute(
            select(Position.quantity)
            .where(Position.user_id == user_id, Position.asset_id == asset_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if position is None or position < quantity:
        raise DomainError.one(
            ErrorCode.INSUFFICIENT_SHARES,
            f"Selling {quantity} {asset_id} but the position holds {position or ZERO}.",
            "quantity",
        )
    lots = (
        await s.execute(
            select(Lot.id, Lot.remaining_quantity, Lot.remaining_cost, Lot.acquired_at)
            .where(Lot.user_id == user_id, Lot.asset_id == asset_id, Lot.remaining_quantity > 0)
            .order_by(Lot.acquired_at, Lot.seq)
            .with_for_update()
        )
    ).all()
    left = quantity
    slices: list[tuple[uuid.UUID, Decimal, Decimal, datetime]] = []  # lot, qty, cost, acquired
    for lot in lots:
        if left <= 0:
            break
        take = min(left, lot.remaining_quantity)
        cost = (
            lot.remaining_cost
            if take == lot.remaining_quantity
            else round_cash(
                lot.remaining_cost * take / lot.remaining_quantity, currency, ROUND_HALF_EVEN
            )
        )
        slices.append((lot.id, take, cost, lot.acquired_at))
        left -= take
        await s.execute(
            update(Lot)
            .where(Lot.id == lot.id)
            .values(
                remaining_quantity=Lot.remaining_quantity - take,
                remaining_cost=Lot.remaining_cost - cost,
            )
            .execution_options(synchronize_session=False)
        )
    if left > 0:  # the position said enough, the lots disagree: refuse rather than guess
        raise RuntimeError(f"lots of {user_id}/{asset_id} are short by {left}")
    shares = _split(proceeds, [q for _, q, _, _ in slices], quantity, currency)
    released = ZERO
    realized = ZERO
    now = utcnow()
    for (lot_id, qty, cost, acquired), slice_proceeds in zip(slices, shares, strict=True):
        gain = slice_proceeds - cost
        released += cost
        realized += gain
        s.add(
            RealizedGain(
                user_id=user_id,
                asset_id=asset_id,
                currency=currency,
                lot_id=lot_id,
                fill_id=fill_id,
                quantity=qty,
                cost_basis=cost,
                proceeds=slice_proceeds,
                gain=gain,
                acquired_at=acquired,
                sold_at=sold_at,
                created_at=now,
            )
        )
    await s.execute(
        update(Position)
        .where(Position.user_id == user_id, Position.asset_id == asset_id)
        .values(
            quantity=Position.quantity - quantity,
            cost_basis=Position.cost_basis - released,
            realized_pnl=Position.realized_pnl + realized,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await s.flush()
    return released, realized


async def apply_fill(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    asset_id: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fill_id: str,
    executed_at: datetime,
    cash_amount: Decimal | None = None,
) -> bool:
    """Apply one user side of a fill to the position and its FIFO lots, inside the caller's
    transaction (never commits). A BUY opens a lot costing the fill's cash; a SELL consumes the
    oldest lots and records a realized gain per lot slice. `cash_amount` is the cash the fill
    moved when the caller has it (default: `fill_cash(quantity, price, currency)`).

    Idempotent per (fill_id, user_id, side): a repeat changes nothing and returns False (True
    when applied). Raises DomainError(INSUFFICIENT_SHARES) when a sell exceeds the position,
    UNKNOWN_ASSET for an unknown asset, ValueError for a non-positive quantity or price."""
    which = Side(side)
    if not quantity.is_finite() or quantity <= 0:
        raise ValueError(f"fill quantity must be positive: {quantity}")
    if not price.is_finite() or price <= 0:
        raise ValueError(f"fill price must be positive: {price}")
    if executed_at.tzinfo is None:
        raise ValueError("executed_at must be timezone-aware")
    currency = await _currency(session, asset_id)
    amount = fill_cash(quantity, price, currency) if cash_amount is None else cash_amount
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"fill cash must be >= 0: {amount}")
    claimed = (
        await session.execute(
            insert(PositionFill)
            .values(
                fill_id=fill_id,
                user_id=user_id,
                side=which,
                asset_id=asset_id,
                quantity=quantity,
                price=price,
                cash_amount=amount,
                executed_at=executed_at,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(constraint="pk_position_fills")
            .returning(PositionFill.fill_id)
        )
    ).scalar_one_or_none()
    if claimed is None:
        return False
    if which is Side.BUY:
        await open_lot(
            session,
            user_id=user_id,
            asset_id=asset_id,
            quantity=quantity,
            cost=amount,
            acquired_at=executed_at,
            source=LotSource.FILL,
            source_id=fill_id,
        )
    else:
        await _consume_lots(
            session,
            user_id=user_id,
            asset_id=asset_id,
            currency=currency,
            quantity=quantity,
            proceeds=amount,
            fill_id=fill_id,
            sold_at=executed_at,
        )
    return True


# ---- reads ----


@dataclass(frozen=True, slots=True)
class PositionRow:
    user_id: uuid.UUID
    asset_id: str
    quantity: Decimal
    cost_basis: Decimal
    realized_pnl: Decimal


async def open_positions(s: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[PositionRow]:
    """Positions with shares, of several users, in one query (ordered by user, asset)."""
    if not user_ids:
        return []
    rows = await s.execute(
        select(
            Position.user_id,
            Position.asset_id,
            Position.quantity,
            Position.cost_basis,
            Position.realized_pnl,
        )
        .where(Position.user_id.in_(list(user_ids)), Position.quantity > 0)
        .order_by(Position.user_id, Position.asset_id)
    )
    return [
        PositionRow(r.user_id, r.asset_id, r.quantity, r.cost_basis, r.realized_pnl) for r in rows
    ]


async def realized_gains(
    s: AsyncSession,
    user_id: uuid.UUID,
    *,
    asset_id: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[RealizedGain]:
    """Realized gains, newest sale first, keyset-paginated on (sold_at, id)."""
    limit = page_size(first)
    query = select(RealizedGain).where(RealizedGain.user_id == user_id)
    if asset_id:
        query = query.where(RealizedGain.asset_id == asset_id)
    if after:
        at, gain_id = decode_cursor(after, uuid.UUID)
        query = query.where(tuple_(RealizedGain.sold_at, RealizedGain.id) < tuple_(at, gain_id))
    query = query.order_by(RealizedGain.sold_at.desc(), RealizedGain.id.desc()).limit(limit + 1)
    items = list((await s.scalars(query)).all())
    return Page(items=items[:limit], has_next_page=len(items) > limit)


async def lots(
    s: AsyncSession,
    user_id: uuid.UUID,
    *,
    asset_id: str | None = None,
    open_only: bool = True,
    first: int | None = None,
    after: str | None = None,
) -> Page[Lot]:
    """Tax lots in FIFO order (the order sales consume them), keyset on (acquired_at, seq)."""
    limit = page_size(first)
    query = select(Lot).where(Lot.user_id == user_id)
    if asset_id:
        query = query.where(Lot.asset_id == asset_id)
    if open_only:
        query = query.where(Lot.remaining_quantity > 0)
    if after:
        at, seq = decode_cursor(after, int)
        query = query.where(tuple_(Lot.acquired_at, Lot.seq) > tuple_(at, seq))
    query = query.order_by(Lot.acquired_at, Lot.seq).limit(limit + 1)
    items = list((await s.scalars(query)).all())
    return Page(items=items[:limit], has_next_page=len(items) > limit)


def is_long_term(acquired_at: datetime, sold_at: datetime) -> bool:
    return sold_at - acquired_at > LONG_TERM


def aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def position_quantity(s: AsyncSession, user_id: uuid.UUID, asset_id: str) -> Decimal:
    found = await s.execute(
        select(func.coalesce(func.sum(Position.quantity), ZERO)).where(
            Position.user_id == user_id, Position.asset_id == asset_id
        )
    )
    return Decimal(found.scalar_one())
