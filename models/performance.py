"""Portfolio performance: end-of-day valuation snapshots and the time-weighted return.

Snapshots (`portfolio_snapshots`, one row per (portfolio, day), upserted, so the job can run
twice): the portfolio's value (holdings + cash for the default portfolio, in the user's base
currency), the moment it was taken, and the day's net external flow (deposits - withdrawals +
transfers in, or assets added - removed for a tracked portfolio) for reporting.

Time-weighted return over [start, end]: the valuation points are the snapshots taken in the
range, plus the live value when the range reaches now. Between consecutive points
t(i-1) < t(i), F(i) is the sum of external flows with t(i-1) < t <= t(i) (read from the
sources, not the snapshots, so a missed snapshot day cannot lose a flow), assumed to happen at
the start of the sub-period (money deposited during a day is invested that day):

    r(i) = V(i) / (V(i-1) + F(i)) - 1          TWR = (1 + r(1)) * ... * (1 + r(n)) - 1

A sub-period with V(i-1) + F(i) <= 0 (nothing invested yet) has no return and is skipped.
Deposits and withdrawals therefore move V without moving the TWR, while the simple
`percentageChange` (V(n) - V(0)) / V(0) includes them. Flows in other currencies are converted
at today's FX table (the platform keeps no FX history yet). Both are reported in percent.
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import structlog
from redis.asyncio import Redis
from sqlalchemy import ForeignKey, PrimaryKeyConstraint, String, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import round_cash
from models.base import Base
from models.errors import DomainError, ErrorCode
from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.ledger import AMOUNT, ZERO, LedgerAccount
from models.portfolio_tables import DEFAULT_DESCRIPTION, DEFAULT_NAME, Portfolio, PortfolioFlow
from models.positions import aware
from models.quotes import convert, usd_per_unit
from models.valuation import PortfolioRef, base_currencies, value_portfolios

log = structlog.get_logger("bourse.performance")

PERCENT = Decimal("0.000001")
MAX_RANGE = timedelta(days=366 * 20)
DEFAULT_RANGE = timedelta(days=30)


class PortfolioSnapshot(Base):
    __tablename__ = "portfolio_snapshots"

    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    day: Mapped[date]
    user_id: Mapped[uuid.UUID]
    taken_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    value: Mapped[Decimal] = mapped_column(AMOUNT)
    holdings_value: Mapped[Decimal] = mapped_column(AMOUNT)
    cash_value: Mapped[Decimal] = mapped_column(AMOUNT)
    net_flow: Mapped[Decimal] = mapped_column(AMOUNT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("portfolio_id", "day", name="pk_portfolio_snapshots"),)


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class Flow:
    at: datetime
    amount: Decimal


def time_weighted_return(points: Sequence[Point], flows: Sequence[Flow]) -> Decimal:
    """Chained sub-period returns (see the module docstring); a fraction, 0.1 = +10 %."""
    ordered = sorted(flows, key=lambda f: f.at)
    times = [f.at for f in ordered]
    growth = Decimal(1)
    for prev, cur in itertools.pairwise(points):
        lo = bisect.bisect_right(times, prev.at)
        hi = bisect.bisect_right(times, cur.at)
        invested = prev.value + sum((f.amount for f in ordered[lo:hi]), ZERO)
        if invested > 0:
            growth *= cur.value / invested
    return growth - 1


@dataclass(frozen=True, slots=True)
class Performance:
    currency: str
    start_value: Decimal
    end_value: Decimal
    percentage_change: Decimal | None
    time_weighted_return: Decimal | None
    net_flows: Decimal
    series: list[Point]


def percent(fraction: Decimal) -> Decimal:
    return (fraction * 100).quantize(PERCENT, ROUND_HALF_EVEN)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


async def external_flows(
    s: AsyncSession,
    refs: Sequence[PortfolioRef],
    bases: dict[uuid.UUID, str],
    rates: dict[str, Decimal],
    after: datetime,
    until: datetime,
) -> dict[uuid.UUID, list[Flow]]:
    """External flows of each portfolio with after < t <= until, in its user's base currency:
    completed deposits (+) and withdrawals (-) for default portfolios, plus `portfolio_flows`.
    Two queries whatever the number of portfolios."""
    out: dict[uuid.UUID, list[Flow]] = {r.id: [] for r in refs}
    defaults = {r.user_id: r.id for r in refs if r.is_default}
    if defaults:
        rows = await s.execute(
            select(
                FundTransaction.user_id,
                FundTransaction.type,
                FundTransaction.amount,
                FundTransaction.currency,
                FundTransaction.completed_at,
            ).where(
                FundTransaction.user_id.in_(list(defaults)),
                # Dividends and cash in lieu are the portfolio's income, not external flows.
                FundTransaction.type.in_([TransactionType.DEPOSIT, TransactionType.WITHDRAWAL]),
                FundTransaction.status == TransactionStatus.COMPLETED,
                FundTransaction.completed_at > after,
                FundTransaction.completed_at <= until,
            )
        )
        for r in rows:
            sign = 1 if r.type is TransactionType.DEPOSIT else -1
            base = bases[r.user_id]
            out[defaults[r.user_id]].append(
                Flow(r.completed_at, sign * convert(r.amount, r.currency, base, rates))
            )
    if refs:
        owner = {r.id: r.user_id for r in refs}
        rows2 = await s.execute(
            select(
                PortfolioFlow.portfolio_id,
                PortfolioFlow.amount,
                PortfolioFlow.currency,
                PortfolioFlow.at,
            ).where(
                PortfolioFlow.portfolio_id.in_(list(owner)),
                PortfolioFlow.at > after,
                PortfolioFlow.at <= until,
            )
        )
        for f in rows2:
            base = bases[owner[f.portfolio_id]]
            out[f.portfolio_id].append(Flow(f.at, convert(f.amount, f.currency, base, rates)))
    for flows in out.values():
        flows.sort(key=lambda f: f.at)
    return out


async def performance(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    prefix: str,
    portfolio: PortfolioRef,
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime | None = None,
) -> Performance:
    now = now or utcnow()
    end = aware(end) if end else now  # a date-time without an offset is taken as UTC
    start = aware(start) if start else end - DEFAULT_RANGE
    if start > end:
        raise DomainError.one(
            ErrorCode.INVALID_DATE_RANGE, "startDate must not be after endDate.", "startDate"
        )
    if end - start > MAX_RANGE:
        raise DomainError.one(
            ErrorCode.INVALID_DATE_RANGE, "The range may span at most 20 years.", "startDate"
        )
    async with sessionmaker() as s:
        base = (await base_currencies(s, [portfolio.user_id]))[portfolio.user_id]
        rates = await usd_per_unit(redis, prefix)
        snapshots = await s.execute(
            select(PortfolioSnapshot.taken_at, PortfolioSnapshot.value, PortfolioSnapshot.currency)
            .where(
                PortfolioSnapshot.portfolio_id == portfolio.id,
                PortfolioSnapshot.taken_at >= start,
                PortfolioSnapshot.taken_at <= end,
            )
            .order_by(PortfolioSnapshot.taken_at)
        )
        points = [
            Point(
                r.taken_at,
                round_cash(convert(r.value, r.currency, base, rates), base, ROUND_HALF_EVEN),
            )
            for r in snapshots
        ]
        if start <= now <= end:
            live = (await value_portfolios(s, redis, prefix, [portfolio]))[portfolio.id]
            if not points or points[-1].at < now:
                points.append(Point(now, live.total))
        flows: list[Flow] = []
        if len(points) > 1:
            flows = (
                await external_flows(
                    s, [portfolio], {portfolio.user_id: base}, rates, points[0].at, points[-1].at
                )
            )[portfolio.id]
    if not points:
        zero = round_cash(ZERO, base, ROUND_HALF_EVEN)
        return Performance(base, zero, zero, None, None, zero, [])
    first, last = points[0].value, points[-1].value
    return Performance(
        currency=base,
        start_value=first,
        end_value=last,
        percentage_change=percent((last - first) / first) if first > 0 else None,
        time_weighted_return=percent(time_weighted_return(points, flows)),
        net_flows=round_cash(sum((f.amount for f in flows), ZERO), base, ROUND_HALF_EVEN),
        series=points,
    )


# ---- the end-of-day job ----


async def ensure_default_portfolios(s: AsyncSession) -> None:
    """A default portfolio for every user with a ledger account (cash or shares), so users who
    never opened the portfolio screen still get snapshots."""
    owners = (
        select(LedgerAccount.user_id).where(LedgerAccount.user_id.is_not(None)).distinct()
    ).subquery()
    rows = select(
        func.gen_random_uuid(),
        owners.c.user_id,
        literal(DEFAULT_NAME),
        literal(DEFAULT_DESCRIPTION),
        literal(True),
        func.now(),
        func.now(),
    )
    await s.execute(
        insert(Portfolio)
        .from_select(
            ["id", "user_id", "name", "description", "is_default", "created_at", "updated_at"],
            rows,
        )
        .on_conflict_do_nothing(index_elements=[Portfolio.user_id], index_where=text("is_default"))
    )


async def snapshot_portfolios(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    prefix: str,
    day: date,
    *,
    batch: int = 500,
) -> int:
    """Value every portfolio now and upsert its snapshot for `day` (idempotent: one row per
    (portfolio, day); a second run overwrites it with the newer valuation). Returns the number
    of portfolios snapshotted. Batches of `batch` portfolios, each a constant number of
    queries and Redis calls."""
    async with sessionmaker.begin() as s:
        await ensure_default_portfolios(s)
    day_start, day_end = day_bounds(day)
    done = 0
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker.begin() as s:
            query = select(Portfolio.id, Portfolio.user_id, Portfolio.is_default)
            if after is not None:
                query = query.where(Portfolio.id > after)
            rows = (await s.execute(query.order_by(Portfolio.id).limit(batch))).all()
            if not rows:
                break
            refs = [PortfolioRef(r.id, r.user_id, r.is_default) for r in rows]
            after = refs[-1].id
            values = await value_portfolios(s, redis, prefix, refs)
            bases = {r.user_id: values[r.id].currency for r in refs}
            rates = await usd_per_unit(redis, prefix)
            flows = await external_flows(
                s, refs, bases, rates, day_start - timedelta(microseconds=1), day_end
            )
            now = utcnow()
            records = []
            for r in refs:
                v = values[r.id]
                day_flows = [f.amount for f in flows[r.id] if f.at < day_end]
                records.append(
                    {
                        "portfolio_id": r.id,
                        "day": day,
                        "user_id": r.user_id,
                        "taken_at": now,
                        "currency": v.currency,
                        "value": v.total,
                        "holdings_value": v.holdings_value,
                        "cash_value": v.cash,
                        "net_flow": round_cash(sum(day_flows, ZERO), v.currency, ROUND_HALF_EVEN),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            stmt = insert(PortfolioSnapshot).values(records)
            await s.execute(
                stmt.on_conflict_do_update(
                    constraint="pk_portfolio_snapshots",
                    set_={
                        k: stmt.excluded[k]
                        for k in (
                            "taken_at",
                            "currency",
                            "value",
                            "holdings_value",
                            "cash_value",
                            "net_flow",
                            "updated_at",
                        )
                    },
                )
            )
            done += len(refs)
    log.info("portfolio snapshots taken", day=day.isoformat(), portfolios=done)
    return done


class Performances:
    """The API's entry to `performance`: the value series and returns of one portfolio."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, prefix: str
    ) -> None:
        self._sm = sessionmaker
        self._redis = redis
        self._prefix = prefix

    async def of(
        self, portfolio: PortfolioRef, start: datetime | None, end: datetime | None
    ) -> Performance:
        return await performance(self._sm, self._redis, self._prefix, portfolio, start, end)
