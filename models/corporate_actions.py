"""Corporate actions: cash dividends and stock splits, recorded by ADMIN, applied exactly once.

- A cash dividend pays every holder of record: the shares in their SHARES ledger account at the
  end of the record date (UTC), i.e. the sum of its postings made before the next midnight, so
  later trades cannot change who is paid. Each is credited on the pay date (at once when the
  pay date is today or past, else by the worker's cron) through the ledger, one balanced
  journal entry per holder (BANK → user cash), with a DIVIDEND row in the funds history.
  Fractional shares are paid pro rata: quantity x amount per share rounded DOWN to the minor unit
  (``fill_cash``, the platform's one rule for quantity x price: nobody is paid a fraction of a
  cent the issuer did not pay).
- A stock split of numerator-for-denominator multiplies every holder's quantity and every open
  lot's quantity by numerator / denominator; a lot's cost is unchanged, so the per-share cost is
  divided by the same ratio and the total cost basis is unchanged. The share delta is one SPLIT
  journal entry per holder (the asset's TRANSFER clearing account ↔ user shares). A remainder
  finer than the asset's quantity increment is sold as cash in lieu at the split-adjusted
  reference price (FIFO from the lots, a realized gain like any sale; a CASH_IN_LIEU row).
  The asset's reference price and previous close are divided by the ratio. Tracked
  (non-default) portfolios' holdings of the asset are adjusted in the same transaction, in one
  statement: quantity x ratio (to 18 decimals, rounded down, never below 10^-18 so the row
  stays a holding), cost basis unchanged, so the purchase price is divided by the ratio (they
  hold no ledger shares: no cash in lieu, no journal entry).
  A split is refused (OPEN_ORDERS) while the asset has open orders: their quantities, prices
  and holds live in the matching books too, and adjusting those needs a shard command (not built).
- Idempotency: an action is applied under its row lock, once (status SCHEDULED → APPLIED); each
  holder's effect is one ``corporate_action_entries`` row (primary key action, user) and the
  funds row's idempotency key is the action's id.
- Lock order: the action row, then every ledger account touched (``Ledger.lock``, id order), then
  positions and lots, as the settlement does (ledger before positions).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import fill_cash
from models import validation
from models.assets import Asset
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode, ProblemCollector
from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.ledger import (
    AMOUNT,
    ZERO,
    AccountKind,
    Ledger,
    LedgerAccount,
    LedgerBatch,
    Leg,
    Posting,
)
from models.notifications.actions import NotificationView, Notifier
from models.notifications.actions import record as record_notifications
from models.notifications.messages import corporate_action_draft
from models.orders.tables import OPEN_STATUSES, Order
from models.portfolio_tables import PortfolioAsset
from models.portfolios import clean_symbol
from models.positions import Lot, Position, apply_fill

EXACT = Decimal("1e-18")  # the ledger's scale: AMOUNT is Numeric(38, 18)
SPLIT_FILL_PREFIX = "split:"  # a split's cash-in-lieu sale's fill id: split:<action>:<user>
MAX_RATIO_TERM = 1000


class CorporateActionKind(enum.StrEnum):
    CASH_DIVIDEND = "CASH_DIVIDEND"
    STOCK_SPLIT = "STOCK_SPLIT"


class CorporateActionStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    APPLIED = "APPLIED"


class CorporateAction(Base):
    __tablename__ = "corporate_actions"

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[CorporateActionKind] = mapped_column(
        Enum(CorporateActionKind, name="corporate_action_kind", native_enum=True)
    )
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_per_share: Mapped[Decimal | None] = mapped_column(AMOUNT)
    ex_date: Mapped[date | None] = mapped_column(Date)
    record_date: Mapped[date | None] = mapped_column(Date)
    pay_date: Mapped[date | None] = mapped_column(Date)
    numerator: Mapped[int | None] = mapped_column(Integer)
    denominator: Mapped[int | None] = mapped_column(Integer)
    effective_date: Mapped[date] = mapped_column(Date)  # pay date of a dividend
    status: Mapped[CorporateActionStatus] = mapped_column(
        Enum(CorporateActionStatus, name="corporate_action_status", native_enum=True)
    )
    holders: Mapped[int] = mapped_column(Integer, default=0)
    total_cash: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_corporate_actions_asset", "asset_id", "effective_date"),
        Index("ix_corporate_actions_due", "status", "effective_date"),
        CheckConstraint(
            "(kind <> 'STOCK_SPLIT') OR (numerator > 0 AND denominator > 0)", name="split_ratio"
        ),
    )


class CorporateActionEntry(Base):
    """One holder's part of an action: what a statement lists and the idempotency key."""

    __tablename__ = "corporate_action_entries"

    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("corporate_actions.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16))
    kind: Mapped[CorporateActionKind] = mapped_column(
        Enum(CorporateActionKind, name="corporate_action_kind", native_enum=True)
    )
    quantity_before: Mapped[Decimal] = mapped_column(AMOUNT)  # held of record / before a split
    quantity_after: Mapped[Decimal] = mapped_column(AMOUNT)
    cash: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)  # dividend, or cash in lieu
    currency: Mapped[str] = mapped_column(String(3))
    journal_entry_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("action_id", "user_id", name="pk_corporate_action_entries"),
        Index("ix_corporate_action_entries_user", "user_id", "created_at"),
    )


@dataclass(frozen=True, slots=True)
class DividendRequest:
    asset_id: str
    amount_per_share: str | Decimal | None
    ex_date: date | None
    record_date: date | None
    pay_date: date | None


@dataclass(frozen=True, slots=True)
class SplitRequest:
    asset_id: str
    numerator: int
    denominator: int
    effective_date: date | None


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` (UTC): holdings of record are those before it."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _today() -> date:
    return utcnow().date()


class CorporateActions:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self._sm = sessionmaker
        self.ledger = ledger
        self._notifier = notifier  # each holder is told (CORPORATE_ACTION)

    async def _asset(self, s: AsyncSession, asset_id: str) -> Asset:
        symbol = clean_symbol(asset_id)
        asset = await s.get(Asset, symbol) if symbol else None
        if asset is None:
            raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {asset_id!r}.", "assetId")
        return asset

    async def record_dividend(self, admin_id: uuid.UUID, req: DividendRequest) -> CorporateAction:
        problems = ProblemCollector()
        async with self._sm.begin() as s:
            asset = await self._asset(s, req.asset_id)
            amount = problems.check(
                lambda: validation.parse_decimal(
                    req.amount_per_share,
                    field="amountPerShare",
                    code=ErrorCode.INVALID_AMOUNT,
                    what="The amount per share",
                    max_decimals=6,
                )
            )
            dates = [req.ex_date, req.record_date, req.pay_date]
            if any(d is None for d in dates) or not (
                req.ex_date <= req.record_date <= req.pay_date  # type: ignore[operator]
            ):
                problems.add(
                    ErrorCode.INVALID_DATE_RANGE,
                    "Dates must satisfy ex-date ≤ record date ≤ pay date.",
                    "recordDate",
                )
            problems.raise_if_any()
            assert amount is not None
            assert req.pay_date is not None
            action = CorporateAction(
                id=uuid.uuid4(),
                kind=CorporateActionKind.CASH_DIVIDEND,
                asset_id=asset.symbol,
                currency=asset.currency,
                amount_per_share=amount,
                ex_date=req.ex_date,
                record_date=req.record_date,
                pay_date=req.pay_date,
                effective_date=req.pay_date,
                status=CorporateActionStatus.SCHEDULED,
                created_by=admin_id,
                created_at=utcnow(),
            )
            s.add(action)
        return await self.apply_if_due(action.id) or action

    async def record_split(self, admin_id: uuid.UUID, req: SplitRequest) -> CorporateAction:
        problems = ProblemCollector()
        async with self._sm.begin() as s:
            asset = await self._asset(s, req.asset_id)
            for name, term in (("numerator", req.numerator), ("denominator", req.denominator)):
                if not 0 < term <= MAX_RATIO_TERM:
                    problems.add(
                        ErrorCode.INVALID_INPUT, f"The {name} is a whole number 1-1000.", name
                    )
            if req.numerator == req.denominator:
                problems.add(ErrorCode.INVALID_INPUT, "A 1-for-1 split changes nothing.", None)
            if req.effective_date is None:
                problems.add(
                    ErrorCode.INVALID_DATE_RANGE, "The effective date is required.", "effectiveDate"
                )
            problems.raise_if_any()
            assert req.effective_date is not None
            action = CorporateAction(
                id=uuid.uuid4(),
                kind=CorporateActionKind.STOCK_SPLIT,
                asset_id=asset.symbol,
                currency=asset.currency,
                numerator=req.numerator,
                denominator=req.denominator,
                effective_date=req.effective_date,
                status=CorporateActionStatus.SCHEDULED,
                created_by=admin_id,
                created_at=utcnow(),
            )
            if action.effective_date <= _today():
                await self._refuse_open_orders(s, asset.symbol)
            s.add(action)
        return await self.apply_if_due(action.id) or action

    async def _refuse_open_orders(self, s: AsyncSession, asset_id: str) -> None:
        open_orders = await s.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.asset_id == asset_id, Order.status.in_(list(OPEN_STATUSES)))
        )
        if open_orders:
            raise DomainError.one(
                ErrorCode.OPEN_ORDERS,
                f"{asset_id} has {open_orders} open order(s); a split applies once none are open.",
                "assetId",
            )

    async def due(self) -> list[uuid.UUID]:
        """Scheduled actions whose date has come (the cron applies them)."""
        async with self._sm() as s:
            rows = await s.scalars(
                select(CorporateAction.id)
                .where(
                    CorporateAction.status == CorporateActionStatus.SCHEDULED,
                    CorporateAction.effective_date <= _today(),
                )
                .order_by(CorporateAction.effective_date, CorporateAction.created_at)
            )
            return list(rows)

    async def apply_if_due(self, action_id: uuid.UUID) -> CorporateAction | None:
        """Apply the action once if its date has come; the action as it stands after."""
        told: list[NotificationView] = []
        action = await self._apply_if_due(action_id, told)
        if self._notifier is not None:
            await self._notifier.announce(told)
        return action

    async def _apply_if_due(
        self, action_id: uuid.UUID, told: list[NotificationView]
    ) -> CorporateAction | None:
        async with self._sm.begin() as s:
            action = (
                await s.execute(
                    select(CorporateAction).where(CorporateAction.id == action_id).with_for_update()
                )
            ).scalar_one_or_none()
            if action is None:
                return None
            if action.status is CorporateActionStatus.SCHEDULED and (
                action.effective_date <= _today()
            ):
                if action.kind is CorporateActionKind.CASH_DIVIDEND:
                    await self._pay_dividend(s, action)
                else:
                    await self._refuse_open_orders(s, action.asset_id)
                    await self._split(s, action)
                action.status = CorporateActionStatus.APPLIED
                action.applied_at = utcnow()
                if self._notifier is not None:
                    await s.flush()
                    told.extend(await self._tell_holders(s, action))
            await s.flush()
            s.expunge(action)
            return action

    @staticmethod
    async def _tell_holders(s: AsyncSession, action: CorporateAction) -> list[NotificationView]:
        """One notification per holder, in the applying transaction (one INSERT)."""
        entries = (
            await s.scalars(
                select(CorporateActionEntry).where(CorporateActionEntry.action_id == action.id)
            )
        ).all()
        drafts = [
            corporate_action_draft(
                e.user_id,
                action.id,
                action.kind.value,
                e.asset_id,
                e.quantity_before,
                e.quantity_after,
                e.cash,
                e.currency,
            )
            for e in entries
        ]
        return await record_notifications(s, drafts)

    async def _pay_dividend(self, s: AsyncSession, action: CorporateAction) -> None:
        assert action.record_date is not None
        assert action.amount_per_share is not None
        held = func.sum(Posting.amount)
        rows = (
            await s.execute(
                select(LedgerAccount.user_id, held.label("quantity"))
                .join(Posting, Posting.account_id == LedgerAccount.id)
                .where(
                    LedgerAccount.kind == AccountKind.SHARES,
                    LedgerAccount.asset == action.asset_id,
                    LedgerAccount.user_id.is_not(None),
                    Posting.created_at < end_of_day(action.record_date),
                )
                .group_by(LedgerAccount.user_id)
                .having(held > 0)
                .order_by(LedgerAccount.user_id)
            )
        ).all()
        ccy = action.currency
        bank = await self.ledger.account_id(s, None, AccountKind.BANK, ccy)
        payable = [
            (r.user_id, r.quantity, fill_cash(r.quantity, action.amount_per_share, ccy))
            for r in rows
        ]
        accounts = {
            user: await self.ledger.account_id(s, user, AccountKind.CASH, ccy)
            for user, _, amount in payable
            if amount > 0
        }
        await self.ledger.lock(s, accounts.values())
        # One journal entry per holder, written set-based (a few statements for all holders,
        # not a round trip per holder); the rows naming the entries are added after it.
        entries = LedgerBatch(self.ledger)
        history: list[object] = []
        now = utcnow()
        total = ZERO
        for user, quantity, amount in payable:
            entry_id = None
            if amount > 0:
                txn_id = uuid.uuid4()
                entry_id = entries.post(
                    TransactionType.DIVIDEND.value,
                    [Leg(accounts[user], ccy, amount), Leg(bank, ccy, -amount)],
                    user_id=user,
                    reference_id=txn_id,
                )
                history.append(
                    _cash_transaction(
                        txn_id, user, TransactionType.DIVIDEND, amount, ccy,
                        f"{action.asset_id} dividend", action.id, entry_id, now,
                    )
                )  # fmt: skip
                total += amount
            history.append(
                CorporateActionEntry(
                    action_id=action.id,
                    user_id=user,
                    asset_id=action.asset_id,
                    kind=action.kind,
                    quantity_before=quantity,
                    quantity_after=quantity,
                    cash=amount,
                    currency=ccy,
                    journal_entry_id=entry_id,
                    created_at=now,
                )
            )
        await entries.write(s)
        s.add_all(history)
        action.holders = len(payable)
        action.total_cash = total
        await s.flush()

    async def _split(self, s: AsyncSession, action: CorporateAction) -> None:
        assert action.numerator is not None
        assert action.denominator is not None
        num, den = Decimal(action.numerator), Decimal(action.denominator)
        asset = (
            await s.execute(select(Asset).where(Asset.symbol == action.asset_id).with_for_update())
        ).scalar_one()
        ccy = asset.currency
        holders = (
            await s.execute(
                select(Position.user_id, Position.quantity)
                .where(Position.asset_id == asset.symbol, Position.quantity > 0)
                .order_by(Position.user_id)
            )
        ).all()
        clearing = await self.ledger.account_id(s, None, AccountKind.TRANSFER, asset.symbol)
        bank = await self.ledger.account_id(s, None, AccountKind.BANK, ccy)
        shares = {
            h.user_id: await self.ledger.account_id(s, h.user_id, AccountKind.SHARES, asset.symbol)
            for h in holders
        }
        cash = {
            h.user_id: await self.ledger.account_id(s, h.user_id, AccountKind.CASH, ccy)
            for h in holders
        }
        await self.ledger.lock(s, [*shares.values(), *cash.values()])
        # Split-adjusted prices: the reference price and the last close, on the tick grid.
        asset.reference_price = _on_grid(asset.reference_price * den / num, asset.tick_size)
        if asset.previous_close is not None:
            asset.previous_close = _on_grid(asset.previous_close * den / num, asset.tick_size)
        # Closed lots too, so every lot's quantity is in today's shares (the wash-sale
        # derivation compares them with split-adjusted sales); their cost is unchanged.
        await s.execute(
            update(Lot)
            .where(Lot.asset_id == asset.symbol, Lot.remaining_quantity == 0)
            .values(quantity=func.trunc(Lot.quantity * num / den, 18))
            .execution_options(synchronize_session=False)
        )
        now = utcnow()
        total_cash = ZERO
        for holder in holders:
            user = holder.user_id
            lots = (
                await s.execute(
                    select(Lot.id, Lot.quantity, Lot.remaining_quantity)
                    .where(Lot.user_id == user, Lot.asset_id == asset.symbol)
                    .where(Lot.remaining_quantity > 0)
                    .order_by(Lot.acquired_at, Lot.seq)
                    .with_for_update()
                )
            ).all()
            scaled = ZERO
            for lot in lots:
                remaining = _scale(lot.remaining_quantity, num, den)
                whole = max(_scale(lot.quantity, num, den), remaining)
                scaled += remaining
                await s.execute(
                    update(Lot)
                    .where(Lot.id == lot.id)
                    .values(quantity=whole, remaining_quantity=remaining)
                    .execution_options(synchronize_session=False)
                )
            before = holder.quantity
            delta = scaled - before
            await s.execute(
                update(Position)
                .where(Position.user_id == user, Position.asset_id == asset.symbol)
                .values(quantity=scaled, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            entry_id = None
            if delta:
                entry_id = await self.ledger.post(
                    s,
                    "SPLIT",
                    [
                        Leg(shares[user], asset.symbol, delta),
                        Leg(clearing, asset.symbol, -delta),
                    ],
                    user_id=user,
                    reference_id=action.id,
                )
            # Cash in lieu of what is finer than the asset's quantity increment.
            kept = (scaled / asset.quantity_increment).to_integral_value(ROUND_DOWN)
            kept *= asset.quantity_increment
            remainder = scaled - kept
            in_lieu = ZERO
            if remainder > 0:
                in_lieu = fill_cash(remainder, asset.reference_price, ccy)
                # Sold like any sale (FIFO lots, a realized gain): the positions' public entry,
                # idempotent per fill id. Statements list it as cash in lieu, not as a trade.
                await apply_fill(
                    s,
                    user_id=user,
                    asset_id=asset.symbol,
                    side="SELL",
                    quantity=remainder,
                    price=asset.reference_price,
                    fill_id=f"{SPLIT_FILL_PREFIX}{action.id}:{user}",
                    executed_at=now,
                    cash_amount=in_lieu,
                )
                legs = [
                    Leg(shares[user], asset.symbol, -remainder),
                    Leg(clearing, asset.symbol, remainder),
                ]
                if in_lieu > 0:
                    legs += [Leg(cash[user], ccy, in_lieu), Leg(bank, ccy, -in_lieu)]
                txn_id = uuid.uuid4()
                lieu_entry = await self.ledger.post(
                    s, "CASH_IN_LIEU", legs, user_id=user, reference_id=txn_id
                )
                if in_lieu > 0:
                    s.add(
                        _cash_transaction(
                            txn_id, user, TransactionType.CASH_IN_LIEU, in_lieu, ccy,
                            f"{asset.symbol} split cash in lieu", action.id, lieu_entry, now,
                        )
                    )  # fmt: skip
                total_cash += in_lieu
            s.add(
                CorporateActionEntry(
                    action_id=action.id,
                    user_id=user,
                    asset_id=asset.symbol,
                    kind=action.kind,
                    quantity_before=before,
                    quantity_after=kept,
                    cash=in_lieu,
                    currency=ccy,
                    journal_entry_id=entry_id,
                    created_at=now,
                )
            )
        # Tracked portfolios (their holdings are what the user entered, not ledger shares): the
        # quantity scales and the cost basis stays, so the purchase price is divided by n/d.
        await s.execute(
            update(PortfolioAsset)
            .where(PortfolioAsset.asset_id == asset.symbol)
            .values(
                quantity=func.greatest(
                    func.trunc(PortfolioAsset.quantity * num / den, 18), SMALLEST_QUANTITY
                ),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        action.holders = len(holders)
        action.total_cash = total_cash
        await s.flush()

    async def actions(self, asset_id: str | None = None) -> list[CorporateAction]:
        query = select(CorporateAction)
        if asset_id is not None:
            query = query.where(CorporateAction.asset_id == (clean_symbol(asset_id) or "-"))
        query = query.order_by(CorporateAction.effective_date.desc(), CorporateAction.created_at)
        async with self._sm() as s:
            return list((await s.scalars(query.limit(500))).all())

    async def entries(
        self, s: AsyncSession, user_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[CorporateActionEntry, CorporateAction]]:
        """A user's part of the actions applied in [start, end), oldest first."""
        rows = await s.execute(
            select(CorporateActionEntry, CorporateAction)
            .join(CorporateAction, CorporateAction.id == CorporateActionEntry.action_id)
            .where(
                CorporateActionEntry.user_id == user_id,
                CorporateActionEntry.created_at >= start,
                CorporateActionEntry.created_at < end,
            )
            .order_by(CorporateActionEntry.created_at)
        )
        return [(r[0], r[1]) for r in rows]


SMALLEST_QUANTITY = Decimal("1e-18")  # the AMOUNT columns' step


def _scale(quantity: Decimal, num: Decimal, den: Decimal) -> Decimal:
    return (quantity * num / den).quantize(EXACT, rounding=ROUND_DOWN)


def _on_grid(price: Decimal, tick: Decimal) -> Decimal:
    ticks = (price / tick).to_integral_value(ROUND_DOWN)
    return max(ticks, Decimal(1)) * tick


__all__ = [
    "CorporateAction",
    "CorporateActionEntry",
    "CorporateActionKind",
    "CorporateActionStatus",
    "CorporateActions",
    "DividendRequest",
    "SplitRequest",
]


def _cash_transaction(
    txn_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: TransactionType,
    amount: Decimal,
    currency: str,
    label: str,
    action_id: uuid.UUID,
    entry_id: uuid.UUID | None,
    now: datetime,
) -> FundTransaction:
    """The customer's history row of a corporate action's cash (a dividend, cash in lieu)."""
    return FundTransaction(
        id=txn_id,
        user_id=user_id,
        type=kind,
        amount=amount,
        currency=currency,
        status=TransactionStatus.COMPLETED,
        memo=label,
        idempotency_key=f"corporate-action:{action_id}",
        request_fingerprint=str(action_id),
        journal_entry_id=entry_id,
        created_at=now,
        completed_at=now,
    )
