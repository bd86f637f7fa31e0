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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    PrimaryKeyConstraint,
    String,
    delete,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import fill_cash, round_cash
from models import bulk
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

    __table_args__ = (
        PrimaryKeyConstraint("fill_id", "user_id", "side", name="pk_position_fills"),
        # A statement's or tax document's trades (migration 0029).
        Index("ix_position_fills_user_executed", "user_id", "executed_at"),
    )


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


@dataclass(frozen=True, slots=True)
class FillSide:
    """One user's side of a fill, as positions see it."""

    user_id: uuid.UUID
    asset_id: str
    currency: str
    side: Side
    quantity: Decimal
    price: Decimal
    cash_amount: Decimal  # the cash the fill moved (the lot's cost or the sale's proceeds)
    fill_id: str
    executed_at: datetime


@dataclass(slots=True)
class _OpenLot:
    id: uuid.UUID
    acquired_at: datetime
    remaining_quantity: Decimal
    remaining_cost: Decimal
    new: FillSide | None = None  # opened by this batch (inserted with its final remainder)
    changed: bool = False


@dataclass(slots=True)
class _Holding:
    """One (user, asset) as the batch sees it, locked."""

    quantity: Decimal  # as locked at the start of the batch, then as the batch moves it
    lots: list[_OpenLot] | None  # open lots, FIFO; None where the batch only buys
    new_lots: list[_OpenLot] = field(default_factory=list)  # in opening order
    existed: bool = True  # the position row was there (and locked) when the batch began
    delta_quantity: Decimal = ZERO
    delta_cost: Decimal = ZERO
    delta_realized: Decimal = ZERO


_CLAIM_COLUMNS: Final = (
    ("fill_id", "text"),
    ("user_id", "uuid"),
    ("side", "fill_side"),
    ("asset_id", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("cash_amount", "numeric"),
    ("executed_at", "timestamptz"),
    ("created_at", "timestamptz"),
)
_POSITION_COLUMNS: Final = (
    ("user_id", "uuid"),
    ("asset_id", "text"),
    ("quantity", "numeric"),
    ("cost_basis", "numeric"),
    ("realized_pnl", "numeric"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_LOT_COLUMNS: Final = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("asset_id", "text"),
    ("source", "lot_source"),
    ("source_id", "text"),
    ("acquired_at", "timestamptz"),
    ("quantity", "numeric"),
    ("cost", "numeric"),
    ("remaining_quantity", "numeric"),
    ("remaining_cost", "numeric"),
    ("created_at", "timestamptz"),
)
_LOT_UPDATE_COLUMNS: Final = (
    ("id", "uuid"),
    ("remaining_quantity", "numeric"),
    ("remaining_cost", "numeric"),
)
_GAIN_COLUMNS: Final = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("asset_id", "text"),
    ("currency", "text"),
    ("lot_id", "uuid"),
    ("fill_id", "text"),
    ("quantity", "numeric"),
    ("cost_basis", "numeric"),
    ("proceeds", "numeric"),
    ("gain", "numeric"),
    ("acquired_at", "timestamptz"),
    ("sold_at", "timestamptz"),
    ("created_at", "timestamptz"),
)


def _check_side(side: FillSide) -> None:
    if not side.quantity.is_finite() or side.quantity <= 0:
        raise ValueError(f"fill quantity must be positive: {side.quantity}")
    if not side.price.is_finite() or side.price <= 0:
        raise ValueError(f"fill price must be positive: {side.price}")
    if side.executed_at.tzinfo is None:
        raise ValueError("executed_at must be timezone-aware")
    if not side.cash_amount.is_finite() or side.cash_amount < 0:
        raise ValueError(f"fill cash must be >= 0: {side.cash_amount}")


@dataclass(frozen=True, slots=True)
class AppliedFills:
    applied: list[FillSide]  # applied now (the others had been, or are refused)
    refused: list[FillSide]  # sells beyond the position: not applied, claim withdrawn


async def apply_fills(s: AsyncSession, sides: Sequence[FillSide]) -> AppliedFills:
    """Apply many fill sides, in order, to positions and FIFO lots with a fixed number of
    statements (claims, positions, lots, gains: ``models.bulk``) whatever their number, inside
    the caller's transaction. A BUY opens a lot costing the fill's cash; a SELL consumes the
    oldest lots (the batch's own new lots included) and records a realized gain per lot slice.

    Idempotent per (fill_id, user_id, side), like ``apply_fill``. The SELL sides that sell more
    than the position holds are refused: nothing of them is applied and their claim is
    withdrawn; the caller decides how loudly to say so."""
    for side in sides:
        _check_side(side)
    unique = list({(x.fill_id, x.user_id, x.side): x for x in sides}.values())
    if not unique:
        return AppliedFills([], [])
    now = utcnow()
    claimed_rows = await bulk.insert_rows(
        s,
        "position_fills",
        _CLAIM_COLUMNS,
        [
            (
                x.fill_id,
                x.user_id,
                str(x.side),
                x.asset_id,
                x.quantity,
                x.price,
                x.cash_amount,
                x.executed_at,
                now,
            )
            for x in unique
        ],
        suffix="ON CONFLICT ON CONSTRAINT pk_position_fills DO NOTHING "
        "RETURNING fill_id, user_id, side",
    )
    assert claimed_rows is not None
    claimed = {(r.fill_id, r.user_id, Side(r.side)) for r in claimed_rows}
    todo = [x for x in unique if (x.fill_id, x.user_id, x.side) in claimed]
    if not todo:
        return AppliedFills([], [])
    holdings = await _lock_holdings(s, todo)
    refused: list[FillSide] = []
    gains: list[tuple[object, ...]] = []
    for x in todo:
        h = holdings[(x.user_id, x.asset_id)]
        if x.side is Side.BUY:
            lot = _OpenLot(uuid.uuid4(), x.executed_at, x.quantity, x.cash_amount, new=x)
            if h.lots is not None:
                _insert_fifo(h.lots, lot)
            h.new_lots.append(lot)
            h.quantity += x.quantity
            h.delta_quantity += x.quantity
            h.delta_cost += x.cash_amount
        elif h.quantity < x.quantity:
            refused.append(x)
        else:
            released, realized = _sell(h, x, gains, now)
            h.quantity -= x.quantity
            h.delta_quantity -= x.quantity
            h.delta_cost -= released
            h.delta_realized += realized
    await _write_holdings(s, holdings, gains, now)
    if refused:
        await s.execute(
            delete(PositionFill).where(
                tuple_(PositionFill.fill_id, PositionFill.user_id, PositionFill.side).in_(
                    [(x.fill_id, x.user_id, x.side) for x in refused]
                )
            )
        )
    return AppliedFills([x for x in todo if x not in refused], refused)


async def _lock_holdings(
    s: AsyncSession, todo: Sequence[FillSide]
) -> dict[tuple[uuid.UUID, str], _Holding]:
    """Lock the positions the sides touch (key order), then the open lots of those that sell
    (FIFO): the module's lock order, position before lots."""
    pairs = sorted({(x.user_id, x.asset_id) for x in todo})
    selling = sorted({(x.user_id, x.asset_id) for x in todo if x.side is Side.SELL})
    rows = await s.execute(
        select(Position.user_id, Position.asset_id, Position.quantity)
        .where(tuple_(Position.user_id, Position.asset_id).in_(pairs))
        .order_by(Position.user_id, Position.asset_id)
        .with_for_update()
    )
    found = {(r.user_id, r.asset_id): r.quantity for r in rows}
    holdings = {
        pair: _Holding(found.get(pair, ZERO), None, existed=pair in found) for pair in pairs
    }
    if selling:
        for pair in selling:
            holdings[pair].lots = []
        lot_rows = await s.execute(
            select(
                Lot.id,
                Lot.user_id,
                Lot.asset_id,
                Lot.remaining_quantity,
                Lot.remaining_cost,
                Lot.acquired_at,
            )
            .where(
                tuple_(Lot.user_id, Lot.asset_id).in_(selling),
                Lot.remaining_quantity > 0,
            )
            .order_by(Lot.user_id, Lot.asset_id, Lot.acquired_at, Lot.seq)
            .with_for_update()
        )
        for r in lot_rows:
            lots = holdings[(r.user_id, r.asset_id)].lots
            assert lots is not None
            lots.append(_OpenLot(r.id, r.acquired_at, r.remaining_quantity, r.remaining_cost))
    return holdings


def _insert_fifo(lots: list[_OpenLot], lot: _OpenLot) -> None:
    """A new lot goes after every lot acquired at or before it (its ``seq`` is the highest)."""
    at = len(lots)
    while at and lots[at - 1].acquired_at > lot.acquired_at:
        at -= 1
    lots.insert(at, lot)


def _sell(
    h: _Holding, x: FillSide, gains: list[tuple[object, ...]], now: datetime
) -> tuple[Decimal, Decimal]:
    """Take the sale's quantity out of the oldest lots; returns (cost released, realized gain)
    and appends one realized-gain row per lot slice."""
    assert h.lots is not None
    left = x.quantity
    slices: list[tuple[_OpenLot, Decimal, Decimal]] = []  # lot, quantity, cost
    for lot in h.lots:
        if left <= 0:
            break
        if lot.remaining_quantity <= 0:
            continue
        take = min(left, lot.remaining_quantity)
        cost = (
            lot.remaining_cost
            if take == lot.remaining_quantity
            else round_cash(
                lot.remaining_cost * take / lot.remaining_quantity, x.currency, ROUND_HALF_EVEN
            )
        )
        slices.append((lot, take, cost))
        lot.remaining_quantity -= take
        lot.remaining_cost -= cost
        lot.changed = True
        left -= take
    if left > 0:  # the position said enough, the lots disagree: refuse rather than guess
        raise RuntimeError(f"lots of {x.user_id}/{x.asset_id} are short by {left}")
    shares = _split(x.cash_amount, [q for _, q, _ in slices], x.quantity, x.currency)
    released = ZERO
    realized = ZERO
    for (lot, qty, cost), proceeds in zip(slices, shares, strict=True):
        gain = proceeds - cost
        released += cost
        realized += gain
        gains.append(
            (
                uuid.uuid4(),
                x.user_id,
                x.asset_id,
                x.currency,
                lot.id,
                x.fill_id,
                qty,
                cost,
                proceeds,
                gain,
                lot.acquired_at,
                x.executed_at,
                now,
            )
        )
    return released, realized


async def _write_holdings(
    s: AsyncSession,
    holdings: dict[tuple[uuid.UUID, str], _Holding],
    gains: Sequence[tuple[object, ...]],
    now: datetime,
) -> None:
    """Positions by delta (upserted: a first buy creates the row), new lots with their final
    remainder (before the gains that name them), consumed lots, realized gains."""
    # Rows that existed are locked: changed by delta. New rows are inserted; ON CONFLICT covers
    # a transfer-in creating the same row meanwhile (a new pair's deltas are never negative:
    # PostgreSQL checks the CHECK constraints on the proposed row before the conflict).
    changed = sorted(
        (pair, h)
        for pair, h in holdings.items()
        if h.delta_quantity or h.delta_cost or h.delta_realized
    )
    await bulk.update_rows(
        s,
        "positions",
        "user_id",
        (*_POSITION_COLUMNS[:5], ("updated_at", "timestamptz")),
        [
            (user, asset, h.delta_quantity, h.delta_cost, h.delta_realized, now)
            for (user, asset), h in changed
            if h.existed
        ],
        "quantity = t.quantity + d.quantity, cost_basis = t.cost_basis + d.cost_basis, "
        "realized_pnl = t.realized_pnl + d.realized_pnl, updated_at = d.updated_at",
        match="t.asset_id = d.asset_id",
    )
    await bulk.insert_rows(
        s,
        "positions",
        _POSITION_COLUMNS,
        [
            (user, asset, h.delta_quantity, h.delta_cost, h.delta_realized, now, now)
            for (user, asset), h in changed
            if not h.existed
        ],
        suffix="ON CONFLICT ON CONSTRAINT pk_positions DO UPDATE SET "
        "quantity = positions.quantity + EXCLUDED.quantity, "
        "cost_basis = positions.cost_basis + EXCLUDED.cost_basis, "
        "realized_pnl = positions.realized_pnl + EXCLUDED.realized_pnl, "
        "updated_at = EXCLUDED.updated_at",
    )
    new_lots: list[tuple[Any, ...]] = []
    consumed: list[tuple[object, ...]] = []
    for (user, asset), h in holdings.items():
        for lot in h.new_lots:
            x = lot.new
            assert x is not None
            new_lots.append(
                (
                    lot.id,
                    user,
                    asset,
                    str(LotSource.FILL),
                    x.fill_id,
                    lot.acquired_at,
                    x.quantity,
                    x.cash_amount,
                    lot.remaining_quantity,
                    lot.remaining_cost,
                    now,
                )
            )
        for lot in h.lots or ():
            if lot.changed and lot.new is None:
                consumed.append((lot.id, lot.remaining_quantity, lot.remaining_cost))
    new_lots.sort(key=lambda row: row[5])  # stable: seq follows (acquired_at, opening order)
    await bulk.insert_rows(s, "position_lots", _LOT_COLUMNS, new_lots)
    await bulk.update_rows(
        s,
        "position_lots",
        "id",
        _LOT_UPDATE_COLUMNS,
        sorted(consumed, key=lambda row: str(row[0])),
        "remaining_quantity = d.remaining_quantity, remaining_cost = d.remaining_cost",
    )
    await bulk.insert_rows(s, "realized_gains", _GAIN_COLUMNS, gains)


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
    """Apply one user side of a fill to the position and its FIFO lots (``apply_fills`` with
    one side), inside the caller's transaction (never commits). `cash_amount` is the cash the
    fill moved when the caller has it (default: `fill_cash(quantity, price, currency)`).

    Idempotent per (fill_id, user_id, side): a repeat changes nothing and returns False (True
    when applied). Raises DomainError(INSUFFICIENT_SHARES) when a sell exceeds the position,
    UNKNOWN_ASSET for an unknown asset, ValueError for a non-positive quantity or price."""
    which = Side(side)
    if not quantity.is_finite() or quantity <= 0:
        raise ValueError(f"fill quantity must be positive: {quantity}")
    if not price.is_finite() or price <= 0:
        raise ValueError(f"fill price must be positive: {price}")
    currency = await _currency(session, asset_id)
    amount = fill_cash(quantity, price, currency) if cash_amount is None else cash_amount
    one = FillSide(
        user_id, asset_id, currency, which, quantity, price, amount, fill_id, executed_at
    )
    result = await apply_fills(session, [one])
    if result.refused:
        position = await position_quantity(session, user_id, asset_id)
        raise DomainError.one(
            ErrorCode.INSUFFICIENT_SHARES,
            f"Selling {quantity} {asset_id} but the position holds {position}.",
            "quantity",
        )
    return bool(result.applied)


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
