"""`/api/portfolio/{userId}`: holdings and performance (seed section 2) of the caller's
brokerage portfolio, valued as GraphQL's `portfolio` and `portfolioPerformance` value it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from bff.rest.auth import own, services_of, signed_in
from bff.rest.problems import RESPONSES, ProblemError
from bff.rest.shapes import (
    AddAssetRequest,
    MessageResponse,
    PerformanceResponse,
    PortfolioAsset,
    PortfolioResponse,
    dec,
    money,
)
from models.accounts import Principal
from models.errors import DomainError
from models.valuation import ref

router = APIRouter(prefix="/portfolio", tags=["portfolio"], responses=RESPONSES)


@router.get("/{userId}")
async def portfolio(
    userId: str,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Query", "portfolio"))],
) -> PortfolioResponse:
    """Holdings at live prices, and the total with cash, in the base currency."""
    own(principal, userId)
    portfolios = services_of(request).portfolios
    found = await portfolios.default(principal.user_id)
    valued = (await portfolios.valuations([ref(found)]))[found.id]
    return PortfolioResponse(
        userId=str(principal.user_id),
        assets=[
            PortfolioAsset(
                assetId=h.asset_id,
                quantity=dec(h.quantity),
                averageCost=dec(h.average_cost),
                currentValue=dec(h.current_value),
            )
            for h in valued.holdings
        ],
        totalValue=money(valued.total, valued.currency),
    )


def _tracked(portfolio_id: str | None) -> str:
    if portfolio_id is None:
        raise ProblemError(
            "NOT_ALLOWED",
            "The brokerage portfolio follows your trades: name a tracked portfolio (portfolioId).",
            field="portfolioId",
        )
    return portfolio_id


@router.post("/{userId}/assets", status_code=201)
async def add_asset(
    userId: str,
    body: AddAssetRequest,
    request: Request,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "addPortfolioAsset", mutates=True))
    ],
) -> MessageResponse:
    """Add (or add more of) an asset to a tracked portfolio (GraphQL `addPortfolioAsset`)."""
    own(principal, userId)
    try:
        await services_of(request).portfolios.add_asset(
            principal.user_id,
            _tracked(body.portfolioId),
            body.assetId,
            body.quantity,
            body.purchasePrice,
        )
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    return MessageResponse(message="Asset added successfully")


@router.delete("/{userId}/assets/{assetId}")
async def remove_asset(
    userId: str,
    assetId: str,
    request: Request,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "removePortfolioAsset", mutates=True))
    ],
    portfolioId: str | None = None,
) -> MessageResponse:
    """Remove an asset from a tracked portfolio (GraphQL `removePortfolioAsset`)."""
    own(principal, userId)
    try:
        await services_of(request).portfolios.remove_asset(
            principal.user_id, _tracked(portfolioId), assetId
        )
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    return MessageResponse(message="Asset removed successfully")


@router.get("/{userId}/performance")
async def performance(
    userId: str,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Query", "portfolioPerformance"))],
    startDate: datetime | None = None,
    endDate: datetime | None = None,
) -> PerformanceResponse:
    """Value at the start and end of the range (default: the last 30 days)."""
    own(principal, userId)
    services = services_of(request)
    found = await services.portfolios.default(principal.user_id)
    try:
        result = await services.performance.of(ref(found), startDate, endDate)
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    change = result.percentage_change
    return PerformanceResponse(
        userId=str(principal.user_id),
        startValue=dec(result.start_value),
        endValue=dec(result.end_value),
        percentageChange=dec(change) if change is not None else "0",
    )
