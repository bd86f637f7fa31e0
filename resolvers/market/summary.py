"""marketSummary: top movers, the universe's index and today's volume (public, cached)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from models.market_summary import MarketSummaries, Mover
from resolvers.context import Context


@strawberry.type(description="An asset's change since its previous close.")
class MarketMover:
    asset_id: str
    percentage_change: Decimal = strawberry.field(
        description="(price - previousClose) / previousClose x 100, rounded to 0.01."
    )
    price: Decimal
    previous_close: Decimal

    @classmethod
    def from_model(cls, m: Mover) -> MarketMover:
        return cls(
            asset_id=m.asset_id,
            percentage_change=m.percentage_change,
            price=m.price,
            previous_close=m.previous_close,
        )


@strawberry.type
class MarketSummary:
    top_gainers: list[MarketMover]
    top_losers: list[MarketMover]
    market_index: Decimal = strawberry.field(
        description="Equal-weighted index of the tradable assets: 1000 x the mean of "
        "price / previous close."
    )
    trading_volume: Decimal = strawberry.field(
        description="Quantity traded on the venue today (UTC), all assets."
    )
    trading_value: Decimal = strawberry.field(
        description="Notional traded on the venue today (UTC), in USD."
    )
    as_of: datetime


@strawberry.type
class SummaryQuery:
    @strawberry.field(description="The market at a glance; refreshed every few seconds.")
    async def market_summary(self, info: Info[Context, Any]) -> MarketSummary:
        services = info.context.services
        settings = services.settings
        summary = await MarketSummaries(
            services.assets,
            services.candles,
            services.redis,
            settings.redis_prefix,
            ttl_seconds=settings.market_summary_cache_seconds,
            movers=settings.market_summary_movers,
        ).get()
        return MarketSummary(
            top_gainers=[MarketMover.from_model(m) for m in summary.top_gainers],
            top_losers=[MarketMover.from_model(m) for m in summary.top_losers],
            market_index=summary.market_index,
            trading_volume=summary.trading_volume,
            trading_value=summary.trading_value,
            as_of=summary.as_of,
        )
