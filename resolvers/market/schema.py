"""Market data: assets (reference data), queried by anyone, created by ADMIN."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from models.assets import NewAsset, encode_cursor
from models.errors import DomainError, ErrorCode
from resolvers.calls import SignedIn
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.market.types import (
    AssetConnection,
    AssetEdge,
    AssetNode,
    AssetPayload,
    CreateAssetInput,
)
from resolvers.mutations import mutation
from resolvers.permissions import IsAdmin
from resolvers.relay import page_info

MarketInfo = Info[Context, Any]


@strawberry.type
class AssetsQuery:
    @strawberry.field(description="An asset by symbol (case-insensitive); null if unknown.")
    async def asset(self, info: MarketInfo, id: str) -> AssetNode | None:
        found = await info.context.services.assets.get(id)
        return AssetNode.from_model(found) if found else None

    @strawberry.field(
        description="Assets by symbol, optionally searched by symbol prefix or name. "
        "`first` is capped at 100."
    )
    async def assets(
        self,
        info: MarketInfo,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> AssetConnection:
        try:
            page = await info.context.services.assets.search(search, first, after)
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            AssetEdge(cursor=encode_cursor(a), node=AssetNode.from_model(a)) for a in page.items
        ]
        return AssetConnection(
            edges=edges,
            page_info=page_info(edges, page.has_next_page),
        )


@strawberry.type
class AssetsMutation:
    @mutation(
        IsAdmin,
        errors=(
            ErrorCode.INVALID_SYMBOL,
            ErrorCode.ASSET_EXISTS,
            ErrorCode.INVALID_INPUT,
            ErrorCode.UNSUPPORTED_CURRENCY,
            ErrorCode.INVALID_TICK_SIZE,
            ErrorCode.INVALID_PRICE,
            ErrorCode.INVALID_CALENDAR,
        ),
        payload=AssetPayload,
        description="ADMIN: list a new asset. It has no liquidity provider unless configured.",
        audit="admin.asset_created",
    )
    async def create_asset(self, call: SignedIn, input: CreateAssetInput) -> AssetPayload:
        asset = await call.services.assets.create(
            NewAsset(
                symbol=input.symbol,
                name=input.name,
                asset_class=input.asset_class,
                currency=input.currency,
                tick_size=input.tick_size,
                fractionable=input.fractionable,
                tradable=input.tradable,
                reference_price=input.reference_price,
                market_calendar=input.market_calendar,
                collar_bps=input.collar_bps,
            )
        )
        return AssetPayload(asset=AssetNode.from_model(asset))
