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
  Open orders are adjusted in the same transaction, by the matching core's own rules
  (``matching/core/split.py``, so PostgreSQL and the engine compute the same terms): remaining
  and filled quantities x ratio rounded down to the quantity increment, limit prices / ratio
  to the tick in the customer's favour (a buy's down, a sell's up), stop prices away from the
  market (a sell's down, a buy's up), trail amounts / ratio (down, at least one tick). An order
  left with nothing is cancelled (reason SPLIT) and its hold released. Holds follow the
  placement rule (``models/orders/rules.py``): a sell's share hold is its new remaining
  quantity; a buy's cash hold is remaining x engine price rounded UP, exactly what placing the
  adjusted order fresh would hold (never more than before: prices round down for buys, so the
  difference is released); an OCO buy's one hold, its remaining x the dearer of its two limits;
  an order with a replace the engine has not answered, what either answer needs (the pending
  replace's requested terms are split too: its REPLACE, stamped with the old split count, is
  adjusted the same way by the engine). Orders queued for a market open get their unsent NEW_ORDER
  rewritten with the new terms. Price alerts' price thresholds are divided by the ratio (to the
  tick, nearest); percentage alerts are unchanged; recurring investments are notional:
  unchanged.
- The engine: the same transaction writes a ``SPLIT`` command (``matching.wire.split``, the
  action id as ``split_id``) to the order outbox, sent after the commit (or by the relay): so
  PostgreSQL and the command commit together, and the shard applies it exactly once (a repeated
  split id is ignored) in its stream's order, where replay and snapshots reproduce it. Its
  SPLIT_ADJUSTED events carry the engine's terms; settlement writes them to the orders (equal
  to what this transaction wrote, unless a fill was in flight). The rule: PostgreSQL is changed
  with the command's outbox row, and the engine's events win for the terms afterwards. A crash
  before the commit changes neither; after it, the outbox delivers the command.
- Between the commit and the engine: ``assets.splitting`` refuses new orders and replaces of
  the asset (ASSET_NOT_TRADABLE) and the liquidity provider pauses, until the settlement
  applies the engine's SPLIT_APPLIED (it clears the flag and sets the action's
  ``engine_applied_at``); a fill the engine made before the SPLIT but settled after the split
  committed is settled in post-split shares (``models/settlement.py``), its fraction as cash in
  lieu at the split's ``split_price`` against the holder's entry, as if it had settled before
  the split (``models/split_in_flight.py``).
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
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import structlog
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

from bourse.clock import now_ns, utcnow
from bourse.money import fill_cash, round_cash
from matching.codec import from_fixed, to_fixed
from matching.core.split import catch_up, split_price, split_quantity, split_total, split_trail
from matching.wire import decode_command, encode_command
from matching.wire import split as split_command
from models import validation
from models.assets import Asset
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode, ProblemCollector
from models.exchange import Exchange, scales
from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.ledger import (
    AMOUNT,
    ZERO,
    AccountKind,
    Hold,
    HoldStatus,
    Ledger,
    LedgerAccount,
    LedgerBatch,
    Leg,
    Posting,
)
from models.notifications.actions import Draft, NotificationView, Notifier
from models.notifications.actions import record as record_notifications
from models.notifications.messages import corporate_action_draft, split_order_draft
from models.notifications.tables import AlertCondition, AlertStatus, PriceAlert
from models.orders.linked import legs_hold_id
from models.orders.outbox import OutboxEntry
from models.orders.tables import (
    OPEN_STATUSES,
    Order,
    OrderClass,
    OrderReplacement,
    OrderStatus,
    ReplaceStatus,
    Side,
)
from models.portfolio_tables import PortfolioAsset
from models.portfolios import clean_symbol
from models.positions import Lot, Position, apply_fill
from models.quotes import split_adjusted, split_live_quote

log = structlog.get_logger("bourse.corporate_actions")
EXACT = Decimal("1e-18")  # the ledger's scale: AMOUNT is Numeric(38, 18)
SPLIT_FILL_PREFIX = "split:"  # a split's cash-in-lieu sale's fill id: split:<action>:<user>
MAX_RATIO_TERM = 1000


def in_lieu_terms(
    holding: Decimal, increment: Decimal, price: Decimal, currency: str
) -> tuple[Decimal, Decimal, Decimal]:
    """A post-split holding's whole increments kept, the fraction finer than the increment, and
    the cash paid in lieu of it (``fill_cash``: rounded down to the cent). One rule for the
    split's holders and for a trade in flight at it (``models/split_in_flight.py``)."""
    kept = (holding / increment).to_integral_value(ROUND_DOWN) * increment
    fraction = holding - kept
    return kept, fraction, fill_cash(fraction, price, currency) if fraction > 0 else ZERO


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
    # A split: when the settlement applied the engine's SPLIT_APPLIED (until then a fill of the
    # asset is one the engine made before the split: settled in post-split shares).
    engine_applied_at: Mapped[datetime | None]
    # A split: the price its cash in lieu was paid at (the split-adjusted reference price),
    # also the price of an in-flight trade's fraction (migration 0031).
    split_price: Mapped[Decimal | None] = mapped_column(AMOUNT)

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
    # A split: the fraction (post-split shares, finer than the increment) paid in lieu of.
    in_lieu_quantity: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
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
        exchange: Exchange | None = None,
    ) -> None:
        self._sm = sessionmaker
        self.ledger = ledger
        self._notifier = notifier  # each holder is told (CORPORATE_ACTION)
        self._exchange = exchange  # sends a split's SPLIT command after the commit

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
            s.add(action)
        return await self.apply_if_due(action.id) or action

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
        commands: list[OutboxEntry] = []
        action = await self._apply_if_due(action_id, told, commands)
        if commands and self._exchange is not None and action is not None:
            await self._send(commands)
            await self._split_quote(action)
        if self._notifier is not None:
            await self._notifier.announce(told)
        return action

    async def _split_quote(self, action: CorporateAction) -> None:
        """The live quote in Redis in post-split prices (best effort: the feed's next quote
        replaces it anyway; see ``workers/marketdata/feed.py`` for the feed's own state)."""
        assert self._exchange is not None
        assert action.numerator is not None
        assert action.denominator is not None
        assert action.applied_at is not None
        async with self._sm() as s:
            asset = await s.get(Asset, action.asset_id)
        if asset is None:
            return
        try:
            await split_live_quote(
                self._exchange.redis,
                self._exchange.prefix,
                asset,
                action.numerator,
                action.denominator,
                action.applied_at,
            )
        except Exception as exc:  # a stale quote is replaced by the feed's next one
            log.warning("could not rescale the live quote after a split", error=str(exc))

    async def _send(self, rows: list[OutboxEntry]) -> None:
        """Send a split's committed SPLIT command and mark it sent (the relay sends it if this
        fails: the shard ignores a repeat)."""
        assert self._exchange is not None
        try:
            await self._exchange.send_encoded([(r.asset_id, r.command, None) for r in rows])
        except Exception:  # the outbox relay delivers it
            return
        async with self._sm.begin() as s:
            await s.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_([r.id for r in rows]))
                .values(sent_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def _apply_if_due(
        self, action_id: uuid.UUID, told: list[NotificationView], commands: list[OutboxEntry]
    ) -> CorporateAction | None:
        async with self._sm.begin() as s:
            action = (
                await s.execute(
                    select(CorporateAction).where(CorporateAction.id == action_id).with_for_update()
                )
            ).scalar_one_or_none()
            if action is None:
                return None
            order_notes: list[Draft] = []
            if action.status is CorporateActionStatus.SCHEDULED and (
                action.effective_date <= _today()
            ):
                if action.kind is CorporateActionKind.CASH_DIVIDEND:
                    await self._pay_dividend(s, action)
                else:
                    row, order_notes = await self._split(s, action)
                    commands.append(row)
                action.status = CorporateActionStatus.APPLIED
                action.applied_at = utcnow()
                if self._notifier is not None:
                    await s.flush()
                    told.extend(await self._tell_holders(s, action))
                    if order_notes:
                        told.extend(await record_notifications(s, order_notes))
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

    async def _split(
        self, s: AsyncSession, action: CorporateAction
    ) -> tuple[OutboxEntry, list[Draft]]:
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
        # The open orders' holds' accounts too, in the same id-ordered lock (the ledger's rule:
        # accounts, then orders, then holds, as the settlement and a cancel take them).
        hold_accounts = (
            await s.scalars(
                select(Hold.account_id)
                .join(Order, Order.hold_id == Hold.id)
                .where(Order.asset_id == asset.symbol, Order.status.in_(list(OPEN_STATUSES)))
                .where(Hold.status == HoldStatus.ACTIVE)
            )
        ).all()
        await self.ledger.lock(s, [*shares.values(), *cash.values(), *hold_accounts])
        # Split-adjusted prices: the reference price and the last close, on the tick grid.
        n, d = action.numerator, action.denominator
        asset.splitting = True  # until the settlement sees the engine's SPLIT_APPLIED
        asset.split_seq += 1  # commands stamped before it catch up in the engine
        asset.reference_price = split_adjusted(asset.reference_price, n, d, asset.tick_size)
        if asset.previous_close is not None:
            asset.previous_close = split_adjusted(asset.previous_close, n, d, asset.tick_size)
        action.split_price = asset.reference_price  # cash in lieu's price, in flight too
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
            kept, remainder, in_lieu = in_lieu_terms(
                scaled, asset.quantity_increment, asset.reference_price, ccy
            )
            if remainder > 0:
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
                    in_lieu_quantity=remainder,
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
        notes = await self._adjust_orders(s, action, asset)
        await self._adjust_alerts(s, action, asset)
        row = OutboxEntry(
            order_id=action.id,
            asset_id=asset.symbol,
            command=encode_command(
                split_command(
                    asset.symbol,
                    str(action.id),
                    numerator=action.numerator,
                    denominator=action.denominator,
                    ts=now_ns(),
                    split_seq=asset.split_seq,
                )
            ),
            available_at=now,
            created_at=now,
        )
        s.add(row)
        await s.flush()
        return row, notes

    async def _adjust_orders(
        self, s: AsyncSession, action: CorporateAction, asset: Asset
    ) -> list[Draft]:
        """Every open order of the asset by the engine's split rules (the module docstring);
        a notification for each order's owner."""
        assert action.numerator is not None
        assert action.denominator is not None
        n, d = action.numerator, action.denominator
        sc = scales(asset)
        ps, qs = sc.price_scale, sc.qty_scale
        tick = to_fixed(asset.tick_size, ps)
        lot = to_fixed(asset.quantity_increment, qs)
        now = utcnow()
        orders = (
            await s.scalars(
                select(Order)
                .where(Order.asset_id == asset.symbol, Order.status.in_(list(OPEN_STATUSES)))
                .order_by(Order.id)
                .with_for_update()
            )
        ).all()
        notes: list[Draft] = []
        if not orders:
            return notes
        ids = [o.id for o in orders]
        # Replaces the engine has not answered: their requested terms are split too (the
        # settlement of REPLACED takes the user's price from the row; the engine adjusts the
        # REPLACE itself by its stamp), and the hold covers either answer.
        replacements = (
            await s.execute(
                select(OrderReplacement.id, OrderReplacement.status).where(
                    OrderReplacement.order_id.in_(ids)
                )
            )
        ).all()
        status = {str(r.id): r.status for r in replacements}
        # An outbox command's prices are in the terms of the split count it was stamped with:
        # caught up with the counted splits before this one that it missed, as the engine
        # caught it up (``catch_up``), they are the engine's limits now (a second split of an
        # order that lived through the first would otherwise take its price from before both).
        history = await self._counted_splits(s, action, asset)
        buys = {o.id: o.side is Side.BUY for o in orders}

        def in_force(order_id: uuid.UUID, cmd: dict[str, Any], price: int) -> int:
            stamp = cmd.get("split_seq")
            if type(stamp) is not int or price <= 0 or stamp >= len(history):
                return price
            missed = history[stamp:]
            return catch_up(missed, buys.get(order_id, True), lot, tick, 0, price, 0, 0)[1]

        # The engine's limit of each order (a stop / trailing buy's cap is the broker's, not
        # the user's): the latest NEW_ORDER / REPLACE price in the outbox (a replace the
        # engine refused or has not answered aside); a pending replace's, apart.
        engine_price: dict[uuid.UUID, int] = {}
        pending_price: dict[uuid.UUID, int] = {}
        # An OCO's limits, the order's and its legs' (its one cash hold covers the dearer).
        oco_prices: dict[uuid.UUID, list[int]] = {}
        queued_rows: dict[uuid.UUID, list[OutboxEntry]] = {}
        for row in (
            await s.scalars(
                select(OutboxEntry).where(OutboxEntry.order_id.in_(ids)).order_by(OutboxEntry.id)
            )
        ).all():
            cmd = decode_command(row.command)
            kind = cmd.get("cmd")
            asked = status.get(str(cmd.get("replace_id"))) if kind == "REPLACE" else None
            if kind == "REPLACE" and asked == ReplaceStatus.PENDING:
                pending_price[row.order_id] = in_force(
                    row.order_id, cmd, int(cmd.get("price") or 0)
                )
            elif cmd.get("price") and (
                kind == "NEW_ORDER" or (kind == "REPLACE" and asked == ReplaceStatus.REPLACED)
            ):
                engine_price[row.order_id] = in_force(row.order_id, cmd, int(cmd["price"]))
            if kind == "NEW_ORDER" and cmd.get("order_class") == "OCO":
                legs = cmd.get("legs")
                limits = [cmd.get("price")]
                if isinstance(legs, list):
                    limits += [g.get("price") for g in legs if isinstance(g, dict)]
                oco_prices[row.order_id] = [
                    in_force(row.order_id, cmd, p) for p in limits if isinstance(p, int) and p > 0
                ]
            if row.sent_at is None and kind == "NEW_ORDER":
                queued_rows.setdefault(row.order_id, []).append(row)
        holds = {
            h.id: h
            for h in (
                await s.scalars(
                    select(Hold)
                    .where(
                        Hold.id.in_(
                            {o.hold_id for o in orders if o.hold_id is not None}
                            | {legs_hold_id(i) for i in ids}
                        ),
                        Hold.status == HoldStatus.ACTIVE,
                    )
                    .order_by(Hold.id)
                    .with_for_update()
                )
            ).all()
        }
        pending = {
            r.order_id: r
            for r in (
                await s.scalars(
                    select(OrderReplacement)
                    .where(
                        OrderReplacement.order_id.in_(ids),
                        OrderReplacement.status == ReplaceStatus.PENDING,
                    )
                    .order_by(OrderReplacement.id)
                    .with_for_update()
                )
            ).all()
        }
        share_holds_done: set[uuid.UUID] = set()
        for o in orders:
            buy = o.side is Side.BUY
            filled = to_fixed(o.filled_quantity, qs, ROUND_DOWN)
            quantity = to_fixed(o.quantity, qs, ROUND_DOWN) if o.quantity is not None else None
            remaining = (quantity - filled) if quantity is not None else 0
            if quantity is None:  # a notional market buy: it never rests
                continue
            new_rem = split_quantity(remaining, n, d, lot)
            new_filled = split_quantity(filled, n, d, lot)
            shown = o.price if o.price is not None else o.stop_price
            before = (from_fixed(remaining, qs), shown)
            hold = holds.get(o.hold_id) if o.hold_id is not None else None
            if remaining and not new_rem:
                # Nothing left: the engine cancels it (reason SPLIT). A simple order is
                # cancelled here too, its hold released; a linked one (its group and shared
                # holds go with it) is left to the settlement of the engine's CANCELLED events.
                if o.order_class is OrderClass.SIMPLE:
                    o.status = OrderStatus.CANCELLED
                    o.cancel_reason = "SPLIT"
                    o.updated_at = now
                    if hold is not None:
                        await self.ledger.release_hold(s, hold.id)
                    notes.append(
                        split_order_draft(
                            o.user_id, action.id, o.id, asset.symbol, o.side.value, before,
                            (ZERO, None),
                        )
                    )  # fmt: skip
                continue
            o.filled_quantity = from_fixed(new_filled, qs)
            o.quantity = from_fixed(new_filled + new_rem, qs)
            if o.price is not None:
                o.price = from_fixed(split_price(to_fixed(o.price, ps), n, d, tick, not buy), ps)
            if o.stop_price is not None:
                o.stop_price = from_fixed(
                    split_price(to_fixed(o.stop_price, ps), n, d, tick, buy), ps
                )
            if o.trail_amount is not None:
                o.trail_amount = from_fixed(
                    split_trail(to_fixed(o.trail_amount, ps), n, d, tick), ps
                )
            o.updated_at = now
            after = (from_fixed(new_rem, qs), o.price if o.price is not None else o.stop_price)
            if new_rem:
                notes.append(
                    split_order_draft(
                        o.user_id, action.id, o.id, asset.symbol, o.side.value, before, after
                    )
                )
            cap = engine_price.get(o.id)
            new_cap = split_price(cap, n, d, tick, not buy) if cap else 0
            # A pending replace's terms, as the engine will take its REPLACE (stamped before
            # this split): its new total rounded as the order's parts are (the filled part and
            # the rest apart, down to the lot: ``split_total``), prices by the same rules.
            asked_rem, asked_cap = 0, 0
            if (r := pending.get(o.id)) is not None:
                total = split_total(to_fixed(r.quantity, qs, ROUND_DOWN), filled, n, d, lot)
                asked_rem = max(total - new_filled, 0)
                r.quantity = from_fixed(total, qs)
                if r.price is not None:
                    r.price = from_fixed(
                        split_price(to_fixed(r.price, ps), n, d, tick, not buy), ps
                    )
                if r.stop_price is not None:
                    r.stop_price = from_fixed(
                        split_price(to_fixed(r.stop_price, ps), n, d, tick, buy), ps
                    )
                if r.trail_amount is not None:
                    r.trail_amount = from_fixed(
                        split_trail(to_fixed(r.trail_amount, ps), n, d, tick), ps
                    )
                asked_price = pending_price.get(o.id)
                asked_cap = split_price(asked_price, n, d, tick, not buy) if asked_price else 0
            # Holds: shares by the quantity rule; a buy's cash as placing it fresh would hold
            # (its own hold: a simple order's or a bracket / OTO entry's; an OCO's is shared).
            own_cash_hold = o.parent_id is None and o.order_class is not OrderClass.OCO
            for h_id in (o.hold_id, legs_hold_id(o.id)):
                h = holds.get(h_id) if h_id is not None else None
                if h is None or h.id in share_holds_done:
                    continue
                kind = await s.scalar(
                    select(LedgerAccount.kind).where(LedgerAccount.id == h.account_id)
                )
                if kind is AccountKind.SHARES:
                    share_holds_done.add(h.id)
                    fixed = split_quantity(to_fixed(h.amount, qs, ROUND_DOWN), n, d, lot)
                    if r is not None and h.id == o.hold_id:
                        # Either answer to the pending replace, as placing it fresh holds.
                        fixed = max(new_rem, asked_rem)
                        r.hold_added = from_fixed(max(fixed - new_rem, 0), qs)
                    await self._resize_hold(s, h, from_fixed(fixed, qs))
                elif buy and h.id == o.hold_id and new_cap and own_cash_hold:
                    fresh = round_cash(
                        from_fixed(new_rem, qs) * from_fixed(new_cap, ps), o.currency, ROUND_CEILING
                    )
                    live = fresh
                    if asked_rem and asked_cap:  # either answer to the pending replace
                        asked_hold = from_fixed(asked_rem, qs) * from_fixed(asked_cap, ps)
                        fresh = max(fresh, round_cash(asked_hold, o.currency, ROUND_CEILING))
                    if fresh < h.amount:
                        await self._resize_hold(s, h, fresh)
                    if r is not None:
                        # What the request added is now what the replaced order needs beyond
                        # the live one (given back if the engine has no live order to replace).
                        r.hold_added = max(h.amount - live, ZERO)
                elif buy and h.id == o.hold_id and o.id in oco_prices and oco_prices[o.id]:
                    # An OCO buy's one hold: its remaining x the dearer of its two limits, as
                    # placing it fresh would hold (models/orders/linked.py).
                    worst = max(split_price(p, n, d, tick, False) for p in oco_prices[o.id])
                    fresh = round_cash(
                        from_fixed(new_rem, qs) * from_fixed(worst, ps), o.currency, ROUND_CEILING
                    )
                    if fresh < h.amount:
                        await self._resize_hold(s, h, fresh)
            for row in queued_rows.get(o.id, []):
                cmd = decode_command(row.command)
                if cmd.get("quantity"):
                    cmd["quantity"] = split_quantity(int(cmd["quantity"]), n, d, lot)
                for key, up in (("price", not buy), ("stop_price", buy)):
                    if cmd.get(key):
                        cmd[key] = split_price(int(cmd[key]), n, d, tick, up)
                if cmd.get("trail_amount"):
                    cmd["trail_amount"] = split_trail(int(cmd["trail_amount"]), n, d, tick)
                cmd["split_seq"] = asset.split_seq  # in post-split terms: not adjusted again
                # A new row (after the SPLIT's), so a rebuild never applies the split to it again.
                await s.delete(row)
                s.add(
                    OutboxEntry(
                        order_id=row.order_id,
                        asset_id=row.asset_id,
                        command=encode_command(cmd),
                        trace_parent=row.trace_parent,
                        available_at=row.available_at,
                        created_at=row.created_at,
                    )
                )
        await s.flush()
        return notes

    @staticmethod
    async def _counted_splits(
        s: AsyncSession, action: CorporateAction, asset: Asset
    ) -> list[tuple[int, int]]:
        """The (numerator, denominator) of the asset's splits before ``action`` that carry a
        split count (``assets.split_seq``, bumped by ``action`` already), oldest first: count
        k is item k - 1. Every split since migration 0030 is counted, so they are the latest."""
        earlier = asset.split_seq - 1
        if earlier <= 0:
            return []
        rows = (
            await s.execute(
                select(CorporateAction.numerator, CorporateAction.denominator)
                .where(
                    CorporateAction.asset_id == asset.symbol,
                    CorporateAction.kind == CorporateActionKind.STOCK_SPLIT,
                    CorporateAction.status == CorporateActionStatus.APPLIED,
                    CorporateAction.id != action.id,
                )
                .order_by(CorporateAction.applied_at.desc())
                .limit(earlier)
            )
        ).all()
        return [(int(r.numerator or 1), int(r.denominator or 1)) for r in reversed(rows)]

    async def _resize_hold(self, s: AsyncSession, hold: Hold, amount: Decimal) -> None:
        """Set an active hold to ``amount`` (its account is locked): the account's ``held``
        moves by the difference; a hold brought to nothing is released."""
        if amount <= 0:
            await self.ledger.release_hold(s, hold.id)
            return
        delta = amount - hold.amount
        if not delta:
            return
        hold.amount = amount
        await s.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == hold.account_id)
            .values(held=LedgerAccount.held + delta)
            .execution_options(synchronize_session=False)
        )

    async def _adjust_alerts(self, s: AsyncSession, action: CorporateAction, asset: Asset) -> None:
        """Price alerts' thresholds / ratio (nearest tick, at least one); percentages stay."""
        assert action.numerator is not None
        assert action.denominator is not None
        ratio = Decimal(action.numerator) / Decimal(action.denominator)
        tick = asset.tick_size
        alerts = (
            await s.scalars(
                select(PriceAlert)
                .where(
                    PriceAlert.asset_id == asset.symbol,
                    PriceAlert.condition.in_(
                        [AlertCondition.PRICE_ABOVE, AlertCondition.PRICE_BELOW]
                    ),
                    PriceAlert.status == AlertStatus.ACTIVE,
                )
                .with_for_update()
            )
        ).all()
        for alert in alerts:
            ticks = (alert.threshold / ratio / tick).to_integral_value(ROUND_HALF_UP)
            alert.threshold = max(ticks, Decimal(1)) * tick
            alert.updated_at = utcnow()
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
