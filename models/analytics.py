"""Performance analytics of a portfolio over [start, end]: time- and money-weighted returns,
a benchmark's return, allocation by asset class and each holding's contribution.

- Time-weighted return: ``models.performance`` (chained sub-period returns between snapshots).
- Money-weighted return: the modified Dietz return, the standard first-order approximation of
  the internal rate of return over one period (not annualised):
  ``(V1 - V0 - F) / (V0 + sum(w_i * F_i))`` with ``w_i`` the fraction of the period left after
  flow ``i``; deposits and withdrawals are the flows (dividends are income, not flows).
- Benchmark return (default SPY): its price change over the period, from the last candle close
  before each end (the reference price for a moment not yet past); null if it has no price.
- Allocation: today's holdings at market value by asset class, and cash (default portfolio),
  as fractions of the total.
- Contributions (default portfolio): each holding's P&L over the period from the statement's
  own figures (``models.documents.statement``: unrealized at the end minus unrealized at the
  start, plus realized P&L and dividends of the period) over the start value; for a tracked
  portfolio, its unrealized P&L over the start value. Returns are in percent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models.assets import Asset
from models.corporate_actions import CorporateActionEntry, CorporateActionKind
from models.documents.statement import _price_at, build_statement
from models.ledger import ZERO
from models.performance import external_flows, percent, performance
from models.portfolios import clean_symbol
from models.quotes import usd_per_unit
from models.valuation import PortfolioRef, base_currencies, value_portfolios

DEFAULT_BENCHMARK = "SPY"


@dataclass(frozen=True, slots=True)
class Allocation:
    asset_class: str
    weight: Decimal  # percent


@dataclass(frozen=True, slots=True)
class Contribution:
    asset_id: str
    contribution: Decimal  # percent of the start value


@dataclass(frozen=True, slots=True)
class Analytics:
    start: datetime
    end: datetime
    currency: str
    start_value: Decimal
    end_value: Decimal
    time_weighted_return: Decimal | None
    money_weighted_return: Decimal | None
    benchmark: str
    benchmark_return: Decimal | None
    allocation: list[Allocation]
    contributions: list[Contribution]


async def _benchmark(
    s: AsyncSession, symbol: str, start: datetime, end: datetime
) -> Decimal | None:
    asset = await s.get(Asset, symbol)
    if asset is None:
        return None
    first, last = await _price_at(s, asset, start), await _price_at(s, asset, end)
    return percent(last / first - 1) if first > 0 else None


async def analytics(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    prefix: str,
    portfolio: PortfolioRef,
    start: datetime | None,
    end: datetime | None,
    benchmark: str | None,
) -> Analytics:
    perf = await performance(sessionmaker, redis, prefix, portfolio, start, end)
    now = utcnow()
    end_at = perf.series[-1].at if perf.series else (end or now)
    start_at = perf.series[0].at if perf.series else (start or end_at - timedelta(days=30))
    symbol = clean_symbol(benchmark or DEFAULT_BENCHMARK) or DEFAULT_BENCHMARK
    async with sessionmaker() as s:
        base = (await base_currencies(s, [portfolio.user_id]))[portfolio.user_id]
        rates = await usd_per_unit(redis, prefix)
        flows = (
            await external_flows(s, [portfolio], {portfolio.user_id: base}, rates, start_at, end_at)
        )[portfolio.id]
        span = (end_at - start_at).total_seconds()
        weighted = sum(
            (f.amount * Decimal((end_at - f.at).total_seconds() / span) for f in flows), ZERO
        ) if span > 0 else ZERO  # fmt: skip
        net = sum((f.amount for f in flows), ZERO)
        capital = perf.start_value + weighted
        mwr = (
            percent((perf.end_value - perf.start_value - net) / capital)
            if perf.series and capital > 0
            else None
        )
        bench = await _benchmark(s, symbol, start_at, end_at)

        live = (await value_portfolios(s, redis, prefix, [portfolio]))[portfolio.id]
        classes = {
            a.symbol: a.asset_class.value
            for a in await s.scalars(
                select(Asset).where(Asset.symbol.in_([h.asset_id for h in live.holdings]))
            )
        }
        by_class: dict[str, Decimal] = defaultdict(Decimal)
        for h in live.holdings:
            by_class[classes.get(h.asset_id, "OTHER")] += h.current_value_base
        if portfolio.is_default and live.cash:
            by_class["CASH"] += live.cash
        total = sum(by_class.values(), ZERO)
        allocation = [
            Allocation(k, percent(v / total)) for k, v in sorted(by_class.items()) if total > 0
        ]

        contributions: list[Contribution] = []
        if perf.start_value > 0:
            pnl: dict[str, Decimal] = defaultdict(Decimal)
            if portfolio.is_default:
                at_end = await build_statement(s, portfolio.user_id, start_at.date(), end_at.date())
                before = start_at.date() - timedelta(days=1)
                at_start = await build_statement(s, portfolio.user_id, before, before)
                for held in at_end.holdings:
                    pnl[held.asset_id] += held.unrealized_pnl + held.realized_pnl
                for held in at_start.holdings:
                    pnl[held.asset_id] -= held.unrealized_pnl
                dividends = await s.execute(
                    select(CorporateActionEntry.asset_id, func.sum(CorporateActionEntry.cash))
                    .where(
                        CorporateActionEntry.user_id == portfolio.user_id,
                        CorporateActionEntry.kind == CorporateActionKind.CASH_DIVIDEND,
                        CorporateActionEntry.created_at >= start_at,
                        CorporateActionEntry.created_at <= end_at,
                    )
                    .group_by(CorporateActionEntry.asset_id)
                )
                for asset_id, paid in dividends:
                    pnl[asset_id] += Decimal(paid)
            else:
                for h in live.holdings:
                    pnl[h.asset_id] += h.unrealized_pnl
            contributions = [
                Contribution(asset_id, percent(value / perf.start_value))
                for asset_id, value in sorted(pnl.items())
            ]
    return Analytics(
        start=start_at,
        end=end_at,
        currency=perf.currency,
        start_value=perf.start_value,
        end_value=perf.end_value,
        time_weighted_return=perf.time_weighted_return,
        money_weighted_return=mwr,
        benchmark=symbol,
        benchmark_return=bench,
        allocation=allocation,
        contributions=contributions,
    )
