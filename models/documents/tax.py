"""The consolidated 1099 of one tax year: 1099-B (one row per lot slice sold), 1099-DIV and
1099-INT, from the realized gains (FIFO lots) and the funds rows; never recomputed another way.

Wash sales (IRS Pub. 550; 1099-B box 1g): a sale at a loss with a purchase of the same asset
within 30 days before or after it disallows the loss in proportion to the replacement shares,
and the disallowed amount is added to the replacement lot's basis (so it returns when that lot
is sold). Replacement shares are the lots of the asset acquired in [sold - 30 days, sold + 30
days], other than the lots the same sale consumed, each share used once, oldest loss first.
Quantities are compared in today's shares: a sale's quantity is scaled by the splits applied
after it (a lot's quantity already is, ``models.corporate_actions``). Disallowed amounts round
half-even to the cent. The adjustment is derived here, at reporting time, from the lots and
gains as stored; the stored lots keep their purchase cost.

1099-DIV box 1a: the DIVIDEND funds rows of the year (ordinary dividends; none are qualified
here). 1099-INT: the platform pays no interest, so its total is 0.00 and it is marked "not
issued".
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from bourse.money import round_cash
from models.assets import Asset
from models.corporate_actions import CorporateAction, CorporateActionKind, CorporateActionStatus
from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.ledger import ZERO
from models.positions import Lot, RealizedGain, is_long_term
from models.users import User

WASH_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Row1099B:
    gain_id: uuid.UUID
    asset_id: str
    description: str
    quantity: Decimal
    acquired: date
    sold: date
    proceeds: Decimal
    cost_basis: Decimal  # adjusted: plus wash-sale losses carried in from earlier sales
    wash_sale_disallowed: Decimal
    gain: Decimal  # proceeds - cost basis + wash sale loss disallowed
    term: str  # SHORT | LONG


@dataclass(slots=True)
class TaxData:
    user_id: uuid.UUID
    username: str
    email: str
    year: int
    generated_at: datetime
    rows: list[Row1099B] = field(default_factory=list)
    dividends: dict[str, Decimal] = field(default_factory=dict)  # 1099-DIV 1a, by currency
    interest: Decimal = Decimal("0.00")

    def digest(self) -> str:
        """What the figures say, hashed: a re-issue with a different digest is a correction."""
        text = (
            "|".join(
                f"{r.gain_id},{r.quantity},{r.proceeds},{r.cost_basis},{r.wash_sale_disallowed}"
                for r in self.rows
            )
            + f"|div:{sorted(self.dividends.items())}|int:{self.interest}"
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _cents(value: Decimal, currency: str) -> Decimal:
    return round_cash(value, currency, ROUND_HALF_EVEN)


Splits = dict[str, list[tuple[datetime, Decimal]]]


async def _split_factors(s: AsyncSession, asset_ids: set[str]) -> Splits:
    if not asset_ids:
        return {}
    rows = await s.execute(
        select(CorporateAction.asset_id, CorporateAction.applied_at, CorporateAction.numerator,
               CorporateAction.denominator)
        .where(CorporateAction.kind == CorporateActionKind.STOCK_SPLIT)
        .where(CorporateAction.status == CorporateActionStatus.APPLIED)
        .where(CorporateAction.asset_id.in_(sorted(asset_ids)))
    )  # fmt: skip
    found: Splits = defaultdict(list)
    for asset_id, at, num, den in rows:
        if at is not None and num and den:
            found[asset_id].append((at, Decimal(num) / Decimal(den)))
    return found


def _now_shares(qty: Decimal, at: datetime, splits: list[tuple[datetime, Decimal]]) -> Decimal:
    for applied, ratio in splits:
        if applied > at:
            qty *= ratio
    return qty


@dataclass(frozen=True, slots=True)
class WashSales:
    """The wash-sale derivation over a user's gains and lots (module docstring)."""

    gains: list[RealizedGain]
    lots: dict[uuid.UUID, Lot]
    splits: Splits
    disallowed: dict[uuid.UUID, Decimal]  # realized-gain id -> loss disallowed (box 1g)
    carried: dict[uuid.UUID, Decimal]  # lot id -> basis added to it (replacement shares)


async def wash_sales(
    s: AsyncSession, user_id: uuid.UUID, *, until: datetime | None = None
) -> WashSales:
    """Every sale (before ``until``) and lot of the user; which losses are disallowed and which
    lots carry them."""
    query = select(RealizedGain).where(RealizedGain.user_id == user_id)
    if until is not None:
        query = query.where(RealizedGain.sold_at < until)
    gains = list(await s.scalars(query.order_by(RealizedGain.sold_at, RealizedGain.id)))
    lots = {lot.id: lot for lot in await s.scalars(select(Lot).where(Lot.user_id == user_id))}
    splits = await _split_factors(s, {g.asset_id for g in gains})
    consumed_by_fill: dict[str, set[uuid.UUID]] = defaultdict(set)
    for g in gains:
        consumed_by_fill[g.fill_id].add(g.lot_id)
    used: dict[uuid.UUID, Decimal] = defaultdict(Decimal)  # replacement shares already used
    carried: dict[uuid.UUID, Decimal] = defaultdict(Decimal)  # basis added to a lot
    disallowed: dict[uuid.UUID, Decimal] = {}
    for g in gains:
        if g.gain >= 0:
            continue
        qty_now = _now_shares(g.quantity, g.sold_at, splits.get(g.asset_id, []))
        left = qty_now
        taken: list[tuple[uuid.UUID, Decimal]] = []
        for lot in sorted(lots.values(), key=lambda x: (x.acquired_at, x.seq)):
            if left <= 0:
                break
            if lot.asset_id != g.asset_id or lot.id in consumed_by_fill[g.fill_id]:
                continue
            if not (g.sold_at - WASH_WINDOW <= lot.acquired_at <= g.sold_at + WASH_WINDOW):
                continue
            free = lot.quantity - used[lot.id]
            if free <= 0:
                continue
            take = min(free, left)
            taken.append((lot.id, take))
            used[lot.id] += take
            left -= take
        if not taken:
            continue
        replaced = qty_now - left
        amount = _cents(-g.gain * replaced / qty_now, g.currency)
        disallowed[g.id] = amount
        shared = ZERO
        for i, (lot_id, take) in enumerate(taken):
            part = (
                amount - shared
                if i == len(taken) - 1
                else _cents(amount * take / replaced, g.currency)
            )
            carried[lot_id] += part
            shared += part

    return WashSales(gains, lots, splits, disallowed, dict(carried))


async def build_tax(s: AsyncSession, user_id: uuid.UUID, year: int) -> TaxData:
    user = await s.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    data = TaxData(user_id, user.username, user.email, year, utcnow())
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    ws = await wash_sales(s, user_id, until=end + WASH_WINDOW)
    gains, lots, splits = ws.gains, ws.lots, ws.splits
    carried, disallowed = ws.carried, ws.disallowed
    names = {
        a.symbol: a.name
        for a in await s.scalars(select(Asset).where(Asset.symbol.in_({g.asset_id for g in gains})))
    }
    for g in gains:
        if not (start <= g.sold_at < end):
            continue
        sold_lot = lots.get(g.lot_id)
        extra = ZERO
        if sold_lot is not None and carried.get(sold_lot.id):
            qty_now = _now_shares(g.quantity, g.sold_at, splits.get(g.asset_id, []))
            extra = _cents(carried[sold_lot.id] * qty_now / sold_lot.quantity, g.currency)
        basis = g.cost_basis + extra
        wash = disallowed.get(g.id, ZERO)
        data.rows.append(
            Row1099B(
                gain_id=g.id,
                asset_id=g.asset_id,
                description=f"{g.quantity.normalize():f} sh {names.get(g.asset_id, g.asset_id)}",
                quantity=g.quantity,
                acquired=g.acquired_at.date(),
                sold=g.sold_at.date(),
                proceeds=_cents(g.proceeds, g.currency),
                cost_basis=_cents(basis, g.currency),
                wash_sale_disallowed=wash,
                gain=_cents(g.proceeds - basis + wash, g.currency),
                term="LONG" if is_long_term(g.acquired_at, g.sold_at) else "SHORT",
            )
        )
    for ccy, total in await s.execute(
        select(FundTransaction.currency, func.sum(FundTransaction.amount))
        .where(FundTransaction.user_id == user_id, FundTransaction.type == TransactionType.DIVIDEND)
        .where(FundTransaction.status == TransactionStatus.COMPLETED)
        .where(FundTransaction.completed_at >= start, FundTransaction.completed_at < end)
        .group_by(FundTransaction.currency)
    ):
        data.dividends[ccy] = _cents(Decimal(total), ccy)
    return data


class WashSaleAdjustments:
    """What the lots view shows: the basis wash sales added to each of a user's lots."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def of(self, user_id: uuid.UUID) -> dict[uuid.UUID, Decimal]:
        """Lot id -> the wash-sale basis carried by the shares it still holds (in cents)."""
        async with self._sm() as s:
            ws = await wash_sales(s, user_id)
            symbols = {ws.lots[lot_id].asset_id for lot_id in ws.carried}
            currency = {
                a.symbol: a.currency
                for a in await s.scalars(select(Asset).where(Asset.symbol.in_(symbols)))
            }
        held: dict[uuid.UUID, Decimal] = {}
        for lot_id, amount in ws.carried.items():
            lot = ws.lots[lot_id]
            share = amount * lot.remaining_quantity / lot.quantity
            held[lot_id] = _cents(share, currency.get(lot.asset_id, "USD"))
        return held
