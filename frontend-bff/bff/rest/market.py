"""`/api/market`: price, history, summary (seed section 4): public, as in GraphQL; the same
readers the resolvers use (`resolvers.market`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from bff.rest.auth import caller_of, services_of
from bff.rest.problems import RESPONSES, ProblemError
from bff.rest.shapes import (
    Candle,
    HistoryResponse,
    Mover,
    PriceResponse,
    SummaryResponse,
    dec,
)
from bourse.clock import utcnow
from models.candle_store import history_range
from models.candles import CandleInterval
from models.errors import DomainError
from models.market_summary import MarketSummaries
from resolvers.market.quotes import current_quotes

router = APIRouter(prefix="/market", tags=["market"], responses=RESPONSES)


@router.get("/price/{assetId}")
async def price(assetId: str, request: Request) -> PriceResponse:
    """The latest price (GraphQL `marketPrice`)."""
    await caller_of(request)  # a partner credential still counts against its limit
    services = services_of(request)
    asset = await services.assets.get(assetId)
    if asset is None:
        raise ProblemError("NOT_FOUND", f"No asset {assetId[:20]!r}.", field="assetId")
    quote = (await current_quotes(services, [asset]))[asset.symbol]
    return PriceResponse(assetId=asset.symbol, price=dec(quote.price), timestamp=quote.timestamp)


@router.get("/history/{assetId}")
async def history(
    assetId: str,
    request: Request,
    startDate: datetime | None = None,
    endDate: datetime | None = None,
    interval: CandleInterval = CandleInterval.ONE_DAY,
) -> HistoryResponse:
    """Candles in [startDate, endDate), oldest first (GraphQL `marketHistory`)."""
    await caller_of(request)
    services = services_of(request)
    asset = await services.assets.get(assetId)
    if asset is None:
        raise ProblemError("NOT_FOUND", f"No asset {assetId[:20]!r}.", field="assetId")
    try:
        start, end = history_range(
            interval, startDate, endDate, utcnow(), services.settings.market_history_max_candles
        )
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    candles = await services.candles.history(asset.symbol, interval, start, end)
    return HistoryResponse(
        assetId=asset.symbol,
        data=[
            Candle(
                timestamp=c.timestamp,
                open=dec(c.open),
                high=dec(c.high),
                low=dec(c.low),
                close=dec(c.close),
                volume=dec(c.volume),
            )
            for c in candles
        ],
    )


@router.get("/summary")
async def summary(request: Request) -> SummaryResponse:
    """Top movers, the index and the day's volume (GraphQL `marketSummary`)."""
    await caller_of(request)
    services = services_of(request)
    s = services.settings
    found = await MarketSummaries(
        services.assets,
        services.candles,
        services.redis,
        s.redis_prefix,
        ttl_seconds=s.market_summary_cache_seconds,
        movers=s.market_summary_movers,
    ).get()
    return SummaryResponse(
        topGainers=[
            Mover(assetId=m.asset_id, percentageChange=dec(m.percentage_change))
            for m in found.top_gainers
        ],
        topLosers=[
            Mover(assetId=m.asset_id, percentageChange=dec(m.percentage_change))
            for m in found.top_losers
        ],
        marketIndex=dec(found.market_index),
        tradingVolume=dec(found.trading_volume),
    )
