"""marketHistory: OHLCV candles of an asset (public market data, like `asset`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from bourse.clock import utcnow
from models.candle_store import history_range
from models.candles import Bar
from models.candles import CandleInterval as CandleIntervalModel
from models.errors import DomainError
from resolvers.context import Context
from resolvers.errors import ApiError

CandleInterval = strawberry.enum(
    CandleIntervalModel,
    name="CandleInterval",
    description="Candle width: ONE_MINUTE, FIVE_MINUTES, ONE_HOUR, ONE_DAY (UTC days).",
)


@strawberry.type(description="One OHLCV bar. `timestamp` is the start of its interval.")
class Candle:
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = strawberry.field(description="Quantity traded on the venue.")

    @classmethod
    def from_bar(cls, b: Bar) -> Candle:
        """A chart's bar as it is read: its numbers are already plain (``CandleStore.history``)."""
        return cls(
            timestamp=b.timestamp, open=b.open, high=b.high, low=b.low, close=b.close,
            volume=b.volume,
        )  # fmt: skip


@strawberry.type
class MarketHistory:
    asset_id: str
    interval: CandleIntervalModel
    data: list[Candle]


def problem_error(exc: DomainError) -> ApiError:
    p = exc.problems[0]
    return ApiError(p.message, p.code.value, field=p.field)


@strawberry.type
class HistoryQuery:
    @strawberry.field(
        description="Candles of an asset for buckets starting in [startDate, endDate), oldest "
        "first. Defaults: endDate now; startDate one chart span before it (1 day of ONE_MINUTE, "
        "7 days of FIVE_MINUTES, 31 days of ONE_HOUR, 366 days of ONE_DAY). Errors "
        "(extensions.code): UNKNOWN_ASSET, INVALID_DATE_RANGE (start not before end), "
        "RANGE_TOO_LARGE (more than 10,000 candles)."
    )
    async def market_history(
        self,
        info: Info[Context, Any],
        asset_id: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: CandleIntervalModel | None = CandleIntervalModel.ONE_DAY,
    ) -> MarketHistory:
        interval = interval or CandleIntervalModel.ONE_DAY
        services = info.context.services
        asset = await services.assets.get(asset_id)
        if asset is None:
            raise ApiError(f"No asset {asset_id!r}.", "UNKNOWN_ASSET", field="assetId")
        try:
            start, end = history_range(
                interval,
                start_date,
                end_date,
                utcnow(),
                services.settings.market_history_max_candles,
            )
        except DomainError as exc:
            raise problem_error(exc) from None
        candles = await services.candles.history(asset.symbol, interval, start, end)
        return MarketHistory(
            asset_id=asset.symbol,
            interval=interval,
            data=[Candle.from_bar(b) for b in candles],
        )
