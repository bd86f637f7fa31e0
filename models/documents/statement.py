"""What a monthly statement says, read from the ledger, the fills and the lots (never recomputed
another way), for one user and one period of whole UTC days ``[start, end]``.

- Opening / closing cash and shares: the sums of the user's CASH / SHARES postings before the
  period's first instant / after its last (the same sums ``ledger check`` verifies).
- Trades: the user's side of every fill (``position_fills``, what the lots were built from).
- Deposits, withdrawals, dividends, cash in lieu: completed funds rows; splits: the user's
  corporate-action entries. Fees: the platform is commission-free, so none are charged (the
  statement says 0.00).
- Market values at period end: closing quantity x the last candle close before the end (for a
  period not yet over, the asset's current reference price).
- Realized P&L: the realized-gain rows (one per lot slice sold) of the period. Unrealized P&L:
  market value - cost basis at the end, the cost basis being the lots acquired before the end
  minus the cost of the slices sold before it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.clock import utcnow
from bourse.money import plain, round_cash
from models.assets import Asset
from models.candles import Candle
from models.corporate_actions import SPLIT_FILL_PREFIX, CorporateAction, CorporateActionEntry
from models.debits import DEBIT_KIND, RECOVERY_KIND
from models.envelope import FieldCipher
from models.funds import METHOD_COLUMN, FundTransaction, TransactionStatus, mask_method
from models.ledger import ZERO, AccountKind, JournalEntry, LedgerAccount, Posting
from models.positions import Lot, PositionFill, RealizedGain
from models.users import User


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[first instant, first instant after) of the whole UTC days start..end."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


@dataclass(frozen=True, slots=True)
class Activity:
    at: datetime
    kind: str  # BUY, SELL, DEPOSIT, WITHDRAWAL, DIVIDEND, CASH_IN_LIEU, SPLIT, FEE,
    # DEBIT_BALANCE (cash the firm advanced), DEBIT_RECOVERY (repaid from a deposit)
    description: str
    asset_id: str | None
    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal | None  # cash in (+) or out (-)
    currency: str


@dataclass(frozen=True, slots=True)
class Holding:
    asset_id: str
    name: str
    currency: str
    opening_quantity: Decimal
    closing_quantity: Decimal
    price: Decimal
    market_value: Decimal
    cost_basis: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(slots=True)
class StatementData:
    user_id: uuid.UUID
    username: str
    email: str
    period_start: date
    period_end: date
    generated_at: datetime
    opening_cash: dict[str, Decimal] = field(default_factory=dict)
    closing_cash: dict[str, Decimal] = field(default_factory=dict)
    holdings: list[Holding] = field(default_factory=list)
    activity: list[Activity] = field(default_factory=list)
    fees: Decimal = ZERO

    @property
    def realized_pnl(self) -> Decimal:
        return sum((h.realized_pnl for h in self.holdings), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((h.unrealized_pnl for h in self.holdings), ZERO)

    @property
    def market_value(self) -> Decimal:
        return sum((h.market_value for h in self.holdings), ZERO)


async def _ledger_sums(
    s: AsyncSession, user_id: uuid.UUID, kind: AccountKind, before: datetime
) -> dict[str, Decimal]:
    rows = await s.execute(
        select(LedgerAccount.asset, func.sum(Posting.amount))
        .join(Posting, Posting.account_id == LedgerAccount.id)
        .where(
            LedgerAccount.user_id == user_id,
            LedgerAccount.kind == kind,
            Posting.created_at < before,
        )
        .group_by(LedgerAccount.asset)
    )
    return {asset: Decimal(total) for asset, total in rows}


def _cash(value: Decimal, currency: str) -> Decimal:
    return round_cash(value, currency, ROUND_HALF_EVEN)


async def _price_at(s: AsyncSession, asset: Asset, end: datetime) -> Decimal:
    if end > utcnow():
        return asset.reference_price
    close = await s.scalar(
        select(Candle.close)
        .where(Candle.asset_id == asset.symbol, Candle.bucket_start < end)
        .where(Candle.interval.in_(["1d", "1h", "1m"]))
        .order_by(Candle.bucket_start.desc(), Candle.interval)
        .limit(1)
    )
    return asset.reference_price if close is None else Decimal(close)


async def build_statement(
    s: AsyncSession,
    user_id: uuid.UUID,
    period_start: date,
    period_end: date,
    *,
    fields: FieldCipher | None = None,
) -> StatementData:
    """`fields` opens each transfer's sealed method, shown masked; without it a transfer is
    described by its kind only."""
    start, end = period_bounds(period_start, period_end)
    user = await s.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    data = StatementData(
        user_id=user_id,
        username=user.username,
        email=user.email,
        period_start=period_start,
        period_end=period_end,
        generated_at=utcnow(),
    )
    data.opening_cash = _cash_map(await _ledger_sums(s, user_id, AccountKind.CASH, start))
    data.closing_cash = _cash_map(await _ledger_sums(s, user_id, AccountKind.CASH, end))
    base = user.base_currency or "USD"
    data.opening_cash.setdefault(base, _cash(ZERO, base))
    data.closing_cash.setdefault(base, _cash(ZERO, base))
    opening = await _ledger_sums(s, user_id, AccountKind.SHARES, start)
    closing = await _ledger_sums(s, user_id, AccountKind.SHARES, end)

    realized: dict[str, Decimal] = defaultdict(Decimal)
    for asset_id, gain in await s.execute(
        select(RealizedGain.asset_id, func.sum(RealizedGain.gain))
        .where(RealizedGain.user_id == user_id)
        .where(RealizedGain.sold_at >= start, RealizedGain.sold_at < end)
        .group_by(RealizedGain.asset_id)
    ):
        realized[asset_id] = Decimal(gain)
    lot_cost: dict[str, Decimal] = defaultdict(Decimal)
    for asset_id, cost in await s.execute(
        select(Lot.asset_id, func.sum(Lot.cost))
        .where(Lot.user_id == user_id, Lot.acquired_at < end)
        .group_by(Lot.asset_id)
    ):
        lot_cost[asset_id] += Decimal(cost)
    for asset_id, cost in await s.execute(
        select(RealizedGain.asset_id, func.sum(RealizedGain.cost_basis))
        .where(RealizedGain.user_id == user_id, RealizedGain.sold_at < end)
        .group_by(RealizedGain.asset_id)
    ):
        lot_cost[asset_id] -= Decimal(cost)

    symbols = sorted({*opening, *closing, *realized})
    assets = {a.symbol: a for a in await s.scalars(select(Asset).where(Asset.symbol.in_(symbols)))}
    for symbol in symbols:
        asset = assets[symbol]
        qty_open = opening.get(symbol, ZERO)
        qty_close = closing.get(symbol, ZERO)
        if not (qty_open or qty_close or realized.get(symbol)):
            continue
        price = await _price_at(s, asset, end)
        value = _cash(qty_close * price, asset.currency)
        cost = _cash(lot_cost.get(symbol, ZERO), asset.currency) if qty_close else ZERO
        data.holdings.append(
            Holding(
                asset_id=symbol,
                name=asset.name,
                currency=asset.currency,
                opening_quantity=qty_open,
                closing_quantity=qty_close,
                price=price,
                market_value=value,
                cost_basis=cost,
                unrealized_pnl=value - cost if qty_close else ZERO,
                realized_pnl=_cash(realized.get(symbol, ZERO), asset.currency),
            )
        )

    activity: list[Activity] = []
    fills = await s.execute(
        select(PositionFill)
        .where(PositionFill.user_id == user_id)
        .where(PositionFill.executed_at >= start, PositionFill.executed_at < end)
        # A split's cash-in-lieu sale is listed once, as the CASH_IN_LIEU funds row.
        .where(~PositionFill.fill_id.startswith(SPLIT_FILL_PREFIX))
        .order_by(PositionFill.executed_at)
    )
    for (f,) in fills:
        ccy = assets[f.asset_id].currency if f.asset_id in assets else "USD"
        sign = Decimal(-1) if f.side.value == "BUY" else Decimal(1)
        activity.append(
            Activity(
                at=f.executed_at,
                kind=f.side.value,
                description=f"{'Bought' if f.side.value == 'BUY' else 'Sold'} {f.asset_id}",
                asset_id=f.asset_id,
                quantity=f.quantity,
                price=f.price,
                amount=sign * f.cash_amount,
                currency=ccy,
            )
        )
    txns = await s.execute(
        select(FundTransaction)
        .where(
            FundTransaction.user_id == user_id,
            FundTransaction.status == TransactionStatus.COMPLETED,
            FundTransaction.completed_at >= start,
            FundTransaction.completed_at < end,
        )
        .order_by(FundTransaction.completed_at)
    )
    for (t,) in txns:
        out = t.type.value == "WITHDRAWAL"
        assert t.completed_at is not None
        activity.append(
            Activity(
                at=t.completed_at,
                kind=t.type.value,
                description=_describe_funds(t, await _method(fields, t)),
                asset_id=None,
                quantity=None,
                price=None,
                amount=-t.amount if out else t.amount,
                currency=t.currency,
            )
        )
    actions = await s.execute(
        select(CorporateActionEntry, CorporateAction)
        .join(CorporateAction, CorporateAction.id == CorporateActionEntry.action_id)
        .where(CorporateActionEntry.user_id == user_id, CorporateAction.kind == "STOCK_SPLIT")
        .where(CorporateActionEntry.created_at >= start, CorporateActionEntry.created_at < end)
    )
    for entry, action in actions:
        activity.append(
            Activity(
                at=entry.created_at,
                kind="SPLIT",
                description=f"{action.numerator}-for-{action.denominator} split of "
                f"{entry.asset_id}: {_q(entry.quantity_before)} -> {_q(entry.quantity_after)}",
                asset_id=entry.asset_id,
                quantity=entry.quantity_after - entry.quantity_before,
                price=None,
                amount=None,
                currency=entry.currency,
            )
        )
    # Cash the firm advanced (a settlement took more than the account had) and its repayment
    # from a deposit (models/debits.py): cash moves without a funds row of their own.
    debits = await s.execute(
        select(Posting.created_at, Posting.asset, Posting.amount, JournalEntry.kind)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(
            LedgerAccount.user_id == user_id,
            LedgerAccount.kind == AccountKind.CASH,
            JournalEntry.kind.in_((DEBIT_KIND, RECOVERY_KIND)),
            Posting.created_at >= start,
            Posting.created_at < end,
        )
    )
    for at, currency, amount, kind in debits:
        activity.append(
            Activity(
                at=at,
                kind=kind,
                description="Cash advanced by the firm: owed"
                if kind == DEBIT_KIND
                else "Debit owed to the firm repaid from a deposit",
                asset_id=None,
                quantity=None,
                price=None,
                amount=amount,
                currency=currency,
            )
        )
    activity.sort(key=lambda a: a.at)
    data.activity = activity
    return data


async def _method(fields: FieldCipher | None, t: FundTransaction) -> str | None:
    if t.method_sealed is None or fields is None:
        return None
    return mask_method(await fields.open(t.method_sealed, column=METHOD_COLUMN, row=t.id))


def _describe_funds(t: FundTransaction, method: str | None) -> str:
    if t.type.value == "DEPOSIT":
        return f"Deposit ({method})" if method else "Deposit"
    if t.type.value == "WITHDRAWAL":
        return f"Withdrawal ({method})" if method else "Withdrawal"
    if t.type.value == "DIVIDEND":
        return f"Cash dividend: {t.memo or ''}".strip()
    return f"Cash in lieu: {t.memo or ''}".strip()


def _cash_map(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    return {ccy: _cash(v, ccy) for ccy, v in sums.items()}


def _q(value: Decimal) -> str:
    """A quantity as people read it: no trailing zeros, never exponent notation."""
    return f"{plain(value):f}"
