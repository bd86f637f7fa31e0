"""news: the latest market news, optionally about one asset (public)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from models.news import MAX_NEWS, NewsItem
from resolvers.context import Context
from resolvers.errors import ApiError


@strawberry.type(name="NewsItem")
class NewsItemNode:
    id: strawberry.ID
    asset_ids: list[str]
    headline: str
    summary: str
    source: str
    url: str
    published_at: datetime

    @classmethod
    def from_model(cls, n: NewsItem) -> NewsItemNode:
        return cls(
            id=strawberry.ID(n.id),
            asset_ids=list(n.asset_ids),
            headline=n.headline,
            summary=n.summary,
            source=n.source,
            url=n.url,
            published_at=n.published_at,
        )


@strawberry.type
class NewsQuery:
    @strawberry.field(
        description=f"Newest first; about `assetId` when given. `first` defaults to 10 and is "
        f"capped at {MAX_NEWS}. Errors: UNKNOWN_ASSET, BAD_USER_INPUT (negative `first`)."
    )
    async def news(
        self, info: Info[Context, Any], asset_id: str | None = None, first: int | None = 10
    ) -> list[NewsItemNode]:
        services = info.context.services
        if first is not None and first < 0:
            raise ApiError("`first` must not be negative.", "BAD_USER_INPUT", field="first")
        symbol = None
        if asset_id is not None:
            asset = await services.assets.get(asset_id)
            if asset is None:
                raise ApiError(f"No asset {asset_id!r}.", "UNKNOWN_ASSET", field="assetId")
            symbol = asset.symbol
        items = await services.news.latest(symbol, 10 if first is None else first)
        return [NewsItemNode.from_model(n) for n in items]
