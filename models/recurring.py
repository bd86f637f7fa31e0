"""Recurring investments: buy a fixed amount of an asset every day, week, two weeks or month.

- A plan (``recurring_investments``) has an anchor date (its ``startDate``) and a frequency; its
  period dates are the anchor plus whole periods (a monthly plan anchored on the 31st runs on
  the last day of shorter months, and on the 31st again when there is one).
- A period's run is due at the first market open on or after the period date's midnight in the
  market's time zone (09:30 New York on the next trading day for US equities; midnight UTC for
  24/7 assets). ``run_due`` (an arq cron job, every minute) places each due run as a notional
  MARKET buy while the asset's market is open.
- Exactly once per period, even if two workers run at once or one dies half-way: the plan row is
  locked (``FOR UPDATE SKIP LOCKED``) while its run is placed, and the order's client order id
  is derived from (plan, period), so a run placed by a worker that died before recording it is
  found again (``DUPLICATE_CLIENT_ORDER_ID``) instead of placed twice. Each period leaves one
  ``recurring_runs`` row: PLACED with its order, or SKIPPED with the reason.
- A run that cannot be placed (not enough buying power, asset no longer tradable) is SKIPPED
  with its reason, the customer is emailed, and the plan moves on to its next period: never an
  error loop.
- Limits: at most ``MAX_ACTIVE`` active or paused plans per user; notional between 1 and the
  order limit, in the asset's currency. Another user's plan does not exist for the caller.
"""

from __future__ import annotations

import calendar as monthcal
import enum
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Final

import structlog
from sqlalchemy import (
    Date,
    Enum,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import round_cash
from models.assets import Asset
from models.base import Base, uuid_pk
from models.calendars import ALWAYS_OPEN, NEW_YORK, calendar
from models.errors import DomainError, ErrorCode
from models.ledger import AMOUNT
from models.notifications.actions import Notifier
from models.notifications.messages import recurring_skipped_draft
from models.orders import MAX_NOTIONAL, OrderBook, PlaceOrderRequest
from models.orders.tables import Order, OrderSubType, Side, TimeInForce
from models.portfolios import clean_symbol, lock_key, not_found, parse_id
from models.validation import parse_decimal

log = structlog.get_logger("bourse.recurring")
MAX_ACTIVE: Final = 50
MIN_NOTIONAL: Final = Decimal(1)
MINOR_DECIMALS: Final = 8  # parsing bound; the currency's own minor unit is checked after


class Frequency(enum.StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    BIWEEKLY = "BIWEEKLY"
    MONTHLY = "MONTHLY"


class PlanStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"


class RunStatus(enum.StrEnum):
    PLACED = "PLACED"
    SKIPPED = "SKIPPED"


class RecurringInvestment(Base):
    __tablename__ = "recurring_investments"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    notional: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[Frequency] = mapped_column(
        Enum(Frequency, name="recurring_frequency", native_enum=True)
    )
    anchor: Mapped[date] = mapped_column(Date)  # the start date: periods count from it
    next_run_on: Mapped[date] = mapped_column(Date)  # the period date of the next run
    next_run_at: Mapped[datetime]  # when that run is due
    status: Mapped[PlanStatus] = mapped_column(
        Enum(PlanStatus, name="recurring_status", native_enum=True), default=PlanStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_recurring_user", "user_id", "created_at"),
        Index("ix_recurring_due", "next_run_at", postgresql_where=text("status = 'ACTIVE'")),
    )


class RecurringRun(Base):
    """One period of a plan: the order it placed, or why it was skipped."""

    __tablename__ = "recurring_runs"

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("recurring_investments.id"))
    period: Mapped[date] = mapped_column(Date)
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="recurring_run_status", native_enum=True)
    )
    order_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("plan_id", "period", name="pk_recurring_runs"),)


# ---- the schedule (pure) ----


def _add_months(anchor: date, months: int) -> date:
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    return date(year, month, min(anchor.day, monthcal.monthrange(year, month)[1]))


def next_period(anchor: date, frequency: Frequency, after: date) -> date:
    """The first period date of the plan strictly after ``after`` (never before the anchor)."""
    if after < anchor:
        return anchor
    if frequency is Frequency.MONTHLY:
        months = (after.year - anchor.year) * 12 + after.month - anchor.month
        candidate = _add_months(anchor, months)
        return candidate if candidate > after else _add_months(anchor, months + 1)
    step = {Frequency.DAILY: 1, Frequency.WEEKLY: 7, Frequency.BIWEEKLY: 14}[frequency]
    periods = (after - anchor).days // step + 1
    return anchor + timedelta(days=periods * step)


def due_at(market_calendar: str, period: date) -> datetime:
    """When a run of ``period`` is due: the first open at or after that date's midnight in the
    market's time zone."""
    if market_calendar == ALWAYS_OPEN:
        return datetime.combine(period, time(0), UTC)
    cal = calendar(market_calendar)
    return cal.next_open(datetime.combine(period, time(0), NEW_YORK)).astimezone(UTC)


def client_order_id(plan_id: uuid.UUID, period: date) -> str:
    """The run's order id for the exchange: one per (plan, period), so never placed twice."""
    return f"ri:{plan_id.hex}:{period:%Y%m%d}"


SendEmail = Callable[[str, str, str, str], Awaitable[None]]
EmailOf = Callable[[uuid.UUID], Awaitable[str | None]]


class RecurringInvestments:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        orders: OrderBook,
        *,
        send_email: SendEmail,
        email_of: EmailOf,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
    ) -> None:
        self._notifier = notifier  # a skipped run is also an ORDER notification
        self._sm = sessionmaker
        self._orders = orders
        self._send_email = send_email
        self._email_of = email_of
        self._clock = clock

    # ---- the customer's side ----

    async def create(
        self,
        user_id: uuid.UUID,
        asset_id: str,
        notional: str,
        frequency: Frequency,
        start_date: date | None,
    ) -> RecurringInvestment:
        symbol = clean_symbol(asset_id)
        amount = parse_decimal(
            notional, field="notional", code=ErrorCode.INVALID_AMOUNT, what="The amount",
            max_decimals=MINOR_DECIMALS,
        )  # fmt: skip
        now = self._clock()
        today = now.astimezone(UTC).date()
        start = start_date or today
        if start < today:
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, "The start date is in the past.", "startDate"
            )
        if start > today + timedelta(days=366):
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, "Start within a year from today.", "startDate"
            )
        async with self._sm.begin() as s:
            asset = await s.get(Asset, symbol) if symbol else None
            if asset is None:
                raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {asset_id!r}.", "assetId")
            if not asset.tradable or not asset.fractionable:
                raise DomainError.one(
                    ErrorCode.ASSET_NOT_TRADABLE,
                    f"{symbol} cannot be bought by amount (it is not tradable or not "
                    "fractionable).",
                    "assetId",
                )
            if amount != round_cash(amount, asset.currency, ROUND_DOWN):
                raise DomainError.one(
                    ErrorCode.INVALID_AMOUNT, "Too many decimals for the currency.", "notional"
                )
            if not MIN_NOTIONAL <= amount <= MAX_NOTIONAL:
                raise DomainError.one(
                    ErrorCode.INVALID_AMOUNT,
                    f"Invest between {MIN_NOTIONAL} and {MAX_NOTIONAL} {asset.currency}.",
                    "notional",
                )
            # One plan at a time per user past this point (the count below cannot race).
            await s.execute(select(func.pg_advisory_xact_lock(0x72656375, lock_key(user_id))))
            live = await s.scalar(
                select(func.count())
                .select_from(RecurringInvestment)
                .where(
                    RecurringInvestment.user_id == user_id,
                    RecurringInvestment.status != PlanStatus.CANCELLED,
                )
            )
            if (live or 0) >= MAX_ACTIVE:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_RECURRING_INVESTMENTS,
                    f"At most {MAX_ACTIVE} recurring investments.",
                )
            plan = RecurringInvestment(
                id=uuid.uuid4(),
                user_id=user_id,
                asset_id=symbol,
                notional=amount,
                currency=asset.currency,
                frequency=frequency,
                anchor=start,
                next_run_on=start,
                next_run_at=due_at(asset.market_calendar, start),
                status=PlanStatus.ACTIVE,
                created_at=now,
                updated_at=now,
            )
            s.add(plan)
        return plan

    async def list_for(self, user_id: uuid.UUID) -> list[RecurringInvestment]:
        async with self._sm() as s:
            rows = await s.scalars(
                select(RecurringInvestment)
                .where(RecurringInvestment.user_id == user_id)
                .order_by(RecurringInvestment.created_at, RecurringInvestment.id)
            )
            return list(rows.all())

    async def runs(self, plan_id: uuid.UUID) -> list[RecurringRun]:
        async with self._sm() as s:
            rows = await s.scalars(
                select(RecurringRun)
                .where(RecurringRun.plan_id == plan_id)
                .order_by(RecurringRun.period)
            )
            return list(rows.all())

    async def pause(self, user_id: uuid.UUID, plan_id: str) -> RecurringInvestment:
        return await self._change(user_id, plan_id, {PlanStatus.ACTIVE}, PlanStatus.PAUSED)

    async def resume(self, user_id: uuid.UUID, plan_id: str) -> RecurringInvestment:
        return await self._change(user_id, plan_id, {PlanStatus.PAUSED}, PlanStatus.ACTIVE)

    async def cancel(self, user_id: uuid.UUID, plan_id: str) -> RecurringInvestment:
        allowed = {PlanStatus.ACTIVE, PlanStatus.PAUSED}
        return await self._change(user_id, plan_id, allowed, PlanStatus.CANCELLED)

    async def _change(
        self, user_id: uuid.UUID, raw_id: str, allowed: set[PlanStatus], to: PlanStatus
    ) -> RecurringInvestment:
        ident = parse_id(raw_id)
        async with self._sm.begin() as s:
            plan = await s.get(RecurringInvestment, ident, with_for_update=True) if ident else None
            if plan is None or plan.user_id != user_id:
                raise not_found("recurring investment", "id")
            if plan.status is to:
                return plan  # already so: a retry or a double tap changes nothing
            if plan.status not in allowed:
                raise DomainError.one(
                    ErrorCode.NOT_CANCELLABLE, f"The plan is {plan.status}.", "id"
                )
            now = self._clock()
            if to is PlanStatus.ACTIVE:
                # Periods that passed while paused are not made up: the next one from today.
                today = now.astimezone(UTC).date()
                if plan.next_run_on < today:
                    plan.next_run_on = next_period(
                        plan.anchor, plan.frequency, today - timedelta(days=1)
                    )
                    asset = await s.get_one(Asset, plan.asset_id)
                    plan.next_run_at = due_at(asset.market_calendar, plan.next_run_on)
            plan.status = to
            plan.updated_at = now
        return plan

    # ---- the worker's side ----

    async def run_due(self, limit: int = 100) -> int:
        """Place every due run whose market is open now; returns how many runs were settled
        (placed or skipped). Safe to run in several workers at once."""
        done = 0
        while done < limit:
            settled = await self._run_one()
            if not settled:
                return done
            done += 1
        return done

    async def _run_one(self) -> bool:
        now = self._clock()
        async with self._sm() as s, s.begin():
            due = (
                await s.execute(
                    select(RecurringInvestment, Asset)
                    .join(Asset, Asset.symbol == RecurringInvestment.asset_id)
                    .where(
                        RecurringInvestment.status == PlanStatus.ACTIVE,
                        RecurringInvestment.next_run_at <= now,
                    )
                    .order_by(RecurringInvestment.next_run_at)
                    .limit(20)
                    .with_for_update(of=RecurringInvestment, skip_locked=True)
                )
            ).all()
            plan: RecurringInvestment | None = None
            for candidate, asset in due:
                if self._orders.market_open(asset, now):
                    plan = candidate
                    break
            if plan is None:
                return False  # nothing due, or only runs waiting for their market to open
            period = plan.next_run_on
            status, order_id, reason = await self._place(plan, period)
            await s.execute(
                insert(RecurringRun)
                .values(
                    plan_id=plan.id,
                    period=period,
                    status=status,
                    order_id=order_id,
                    reason=reason,
                    created_at=now,
                )
                .on_conflict_do_nothing(constraint="pk_recurring_runs")
            )
            plan.next_run_on = next_period(plan.anchor, plan.frequency, period)
            plan.next_run_at = due_at(asset.market_calendar, plan.next_run_on)
            plan.updated_at = now
        if status is RunStatus.SKIPPED:
            await self._tell_skipped(plan, period, reason or "")
        return True

    async def _place(
        self, plan: RecurringInvestment, period: date
    ) -> tuple[RunStatus, uuid.UUID | None, str | None]:
        key = client_order_id(plan.id, period)
        request = PlaceOrderRequest(
            asset_id=plan.asset_id,
            side=Side.BUY,
            sub_type=OrderSubType.MARKET,
            time_in_force=TimeInForce.IOC,
            notional=str(plan.notional),
            client_order_id=key,
        )
        try:
            order = await self._orders.place(plan.user_id, request)
        except DomainError as exc:
            code = exc.problems[0].code
            if code is ErrorCode.DUPLICATE_CLIENT_ORDER_ID:  # placed by a run that died
                return RunStatus.PLACED, await self._order_of(plan.user_id, key), None
            log.info("recurring run skipped", plan=str(plan.id), period=str(period), code=code)
            return RunStatus.SKIPPED, None, code.value
        return RunStatus.PLACED, order.id, None

    async def _order_of(self, user_id: uuid.UUID, key: str) -> uuid.UUID | None:
        async with self._sm() as s:
            found: uuid.UUID | None = await s.scalar(
                select(Order.id).where(Order.user_id == user_id, Order.client_order_id == key)
            )
        return found

    async def _tell_skipped(self, plan: RecurringInvestment, period: date, reason: str) -> None:
        email = await self._email_of(plan.user_id)
        if not email:
            return
        why = {
            ErrorCode.INSUFFICIENT_BUYING_POWER.value: "there was not enough buying power",
            ErrorCode.ASSET_NOT_TRADABLE.value: f"{plan.asset_id} was not tradable",
            ErrorCode.KYC_REQUIRED.value: "your identity is not verified yet",
        }.get(reason, f"it could not be placed ({reason})")
        body = (
            f"Your recurring investment of {plan.notional.normalize()} {plan.currency} in "
            f"{plan.asset_id} for {period:%Y-%m-%d} was skipped: {why}. The plan carries on; "
            f"its next run is on {plan.next_run_on:%Y-%m-%d}."
        )
        await self._send_email(
            email,
            f"Recurring investment in {plan.asset_id} skipped",
            body,
            f"recurring-skipped:{plan.id}:{period:%Y%m%d}",
        )
        if self._notifier is not None:
            await self._notifier.notify(
                recurring_skipped_draft(plan.user_id, plan.id, plan.asset_id, f"{period}", body)
            )
