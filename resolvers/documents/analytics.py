"""`performanceAnalytics` (API.md section 9, the seed's Reporting): returns, benchmark,
allocation and contributions of one of the caller's portfolios (models/analytics.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from models.analytics import analytics
from models.errors import DomainError, ErrorCode
from models.valuation import ref
from resolvers.calls import SignedIn, query
from resolvers.errors import ApiError
from resolvers.permissions import IsAuthenticated


@strawberry.type
class AllocationType:
    asset_class: str = strawberry.field(description="EQUITY, ETF, CRYPTO or CASH.")
    weight: Decimal = strawberry.field(description="Percent of the portfolio's value.")


@strawberry.type
class ContributionType:
    asset_id: str
    contribution: Decimal = strawberry.field(description="Percent of the start value.")


@strawberry.type(name="PerformanceAnalytics")
class PerformanceAnalyticsType:
    portfolio_id: strawberry.ID
    currency: str
    start_date: datetime
    end_date: datetime
    start_value: Decimal
    end_value: Decimal
    time_weighted_return: Decimal | None = strawberry.field(description="Percent.")
    money_weighted_return: Decimal | None = strawberry.field(
        description="Percent, modified Dietz (the period's IRR to first order, not annualised)."
    )
    benchmark: str
    benchmark_return: Decimal | None = strawberry.field(description="Percent; null: no price.")
    allocation: list[AllocationType]
    contributions: list[ContributionType]


@strawberry.type
class AnalyticsQuery:
    @query(
        IsAuthenticated,
        description="Returns against a benchmark (default SPY), allocation by asset class and "
        "contributions by holding; no portfolioId: the default one.",
    )
    async def performance_analytics(
        self,
        call: SignedIn,
        portfolio_id: strawberry.ID | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        benchmark: str | None = None,
    ) -> PerformanceAnalyticsType:
        found = await call.services.portfolios.get(call.principal.user_id, portfolio_id)
        if found is None:
            raise ApiError("No such portfolio.", ErrorCode.NOT_FOUND.value, field="portfolioId")
        services = call.services
        try:
            # Analytics may lag (models/replicas.py): a replica's session when one is fit.
            result = await analytics(
                services.reads, services.redis, services.settings.redis_prefix,
                ref(found), start_date, end_date, benchmark,
            )  # fmt: skip
        except DomainError as exc:
            problem = exc.problems[0]
            raise ApiError(problem.message, problem.code.value, field=problem.field) from None
        return PerformanceAnalyticsType(
            portfolio_id=strawberry.ID(str(found.id)),
            currency=result.currency,
            start_date=result.start,
            end_date=result.end,
            start_value=result.start_value,
            end_value=result.end_value,
            time_weighted_return=result.time_weighted_return,
            money_weighted_return=result.money_weighted_return,
            benchmark=result.benchmark,
            benchmark_return=result.benchmark_return,
            allocation=[
                AllocationType(asset_class=a.asset_class, weight=a.weight)
                for a in result.allocation
            ],
            contributions=[
                ContributionType(asset_id=c.asset_id, contribution=c.contribution)
                for c in result.contributions
            ],
        )
