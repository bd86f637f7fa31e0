"""Quotes: ``marketPrice`` (query) and ``quotes`` (subscription). Public market data: no sign-in
needed, like ``asset`` (prices are not personal; the limits below bound what one client costs).

- ``marketPrice(assetId)``: the latest quote the feed wrote to Redis; without one (feed not yet
  run), the asset's stored reference price with the book's best bid/ask. An unknown asset gives
  ``null`` *and* a GraphQL error with ``extensions.code = NOT_FOUND`` (the field is nullable,
  so clients checking either convention see it).
- ``quotes(assetIds)``: first the current quote of each asset (in the order asked), then every
  new quote as the feed publishes it on ``<P>quotes:<symbol>``, through the process's pub/sub
  hub (``resolvers/hub.py``). A slow client is conflated: it gets the newest quote of each asset
  when it catches up, never a backlog. After the hub reconnects to Redis the current quotes are
  sent again (updates may have been missed meanwhile). Errors (before any quote):
  ``BAD_USER_INPUT`` (no asset), ``TOO_MANY_ASSETS`` (more than ``quotes_max_assets``, 50),
  ``NOT_FOUND`` (unknown assets, listed in ``extensions.assetIds``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from redis.exceptions import RedisError
from strawberry.types import Info

from bourse.keys import quote_channel
from models.assets import Asset
from models.errors import ErrorCode
from models.quotes import QuoteData, price_of, read_quotes
from models.services import Services
from resolvers.context import Context
from resolvers.errors import ApiError
from resolvers.execution import share
from resolvers.hub import ConflatingSubscriber

QuotesInfo = Info[Context, Any]


@strawberry.type(
    description="The latest price of an asset: the venue's last trade when recent, else the "
    "reference price of the market-data feed. `bid` / `ask` are the book's best prices (null "
    "when that side is empty)."
)
class Quote:
    asset_id: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    timestamp: datetime

    @classmethod
    def from_data(cls, q: QuoteData) -> Quote:
        return cls(asset_id=q.asset_id, price=q.price, bid=q.bid, ask=q.ask, timestamp=q.timestamp)


def _decode(data: bytes) -> Quote:
    # One Quote per published message, yielded to every subscriber of its asset: public
    # data, so executed and rendered once per distinct selection (resolvers/execution.py).
    return share(Quote.from_data(QuoteData.from_json(data)))


async def current_quotes(services: Services, assets: Sequence[Asset]) -> dict[str, QuoteData]:
    """The quote of each asset: the feed's, else its reference price with the book's bid/ask
    (read through the matching gateway, ``models.exchange``)."""
    prefix = services.settings.redis_prefix
    live = await read_quotes(services.redis, prefix, [a.symbol for a in assets])
    missing = [a.symbol for a in assets if a.symbol not in live]
    books = await services.exchange.books(missing) if missing else {}
    result: dict[str, QuoteData] = {}
    for asset in assets:
        quote = price_of(asset, live)
        if asset.symbol not in live:
            book = books.get(asset.symbol)
            if book is not None:
                quote = QuoteData(
                    asset_id=quote.asset_id,
                    price=quote.price,
                    bid=_decimal(book.get("best_bid")),
                    ask=_decimal(book.get("best_ask")),
                    timestamp=quote.timestamp,
                    reference=quote.price,
                )
        result[asset.symbol] = quote
    return result


def _decimal(raw: object) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


def not_found(symbols: Sequence[str]) -> ApiError:
    return ApiError(
        f"Unknown asset: {', '.join(symbols)}.", ErrorCode.NOT_FOUND.value, assetIds=list(symbols)
    )


async def _known_assets(services: Services, raw_ids: Sequence[str], limit: int) -> list[Asset]:
    if not raw_ids:
        raise ApiError("List at least one asset id.", "BAD_USER_INPUT", field="assetIds")
    if len(raw_ids) > limit:
        raise ApiError(
            f"At most {limit} assets per subscription.",
            ErrorCode.TOO_MANY_ASSETS.value,
            field="assetIds",
            limit=limit,
        )
    symbols = list(dict.fromkeys(s.strip().upper() for s in raw_ids))
    found = await services.assets.get_many(symbols)
    unknown = [s for s in symbols if s not in found]
    if unknown:
        raise not_found(unknown)
    return [found[s] for s in symbols]


@strawberry.type
class QuotesQuery:
    @strawberry.field(
        description="The latest quote of an asset (public). Unknown asset: null, with a "
        "NOT_FOUND error."
    )
    async def market_price(self, info: QuotesInfo, asset_id: str) -> Quote | None:
        services = info.context.services
        asset = await services.assets.get(asset_id)
        if asset is None:
            raise not_found([asset_id.strip().upper()])
        quotes = await current_quotes(services, [asset])
        return Quote.from_data(quotes[asset.symbol])


@strawberry.type
class QuotesSubscription:
    @strawberry.subscription(
        description="Live quotes (public): the current quote of each asset, then every update. "
        "At most 50 assets; a slow client gets the latest quote per asset, not a backlog."
    )
    async def quotes(self, info: QuotesInfo, asset_ids: list[str]) -> AsyncGenerator[Quote, None]:
        services = info.context.services
        hub = info.context.hub
        if hub is None:
            raise ApiError("Subscriptions are not served here.", "SERVICE_UNAVAILABLE")
        assets = await _known_assets(services, asset_ids, services.settings.quotes_max_assets)
        prefix = services.settings.redis_prefix
        channels = [quote_channel(prefix, a.symbol) for a in assets]
        sent: dict[str, datetime] = {}
        async with hub.subscription(channels, ConflatingSubscriber()) as subscriber:
            resync = True  # the first pass sends the current quotes
            while True:
                if resync:
                    for data in (await _snapshot(services, assets)).values():
                        sent[data.asset_id] = data.timestamp
                        yield Quote.from_data(data)
                delivery = await subscriber.get()
                resync = delivery.resync
                if resync:
                    continue  # the snapshot supersedes whatever arrived with it
                for message in delivery.messages:
                    quote = message.decode(_decode)
                    if quote.timestamp < sent.get(quote.asset_id, quote.timestamp):
                        continue  # older than what the client has (snapshot raced a message)
                    sent[quote.asset_id] = quote.timestamp
                    yield quote


async def _snapshot(services: Services, assets: Sequence[Asset]) -> dict[str, QuoteData]:
    """``current_quotes``, retried briefly: right after Redis comes back, pooled connections
    may still be the dead ones."""
    for attempt in range(5):
        try:
            return await current_quotes(services, assets)
        except (RedisError, OSError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")
