"""GraphQL types of the market-data domain: assets (quotes, candles and news join them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from bourse.clock import utcnow
from bourse.money import plain
from models.assets import Asset as AssetModel
from models.assets import AssetClass as AssetClassModel
from models.calendars import Session, calendar
from resolvers.errors import UserError
from resolvers.relay import PageInfo

AssetClass = strawberry.enum(AssetClassModel, name="AssetClass")
MarketSession = strawberry.enum(
    Session,
    name="MarketSession",
    description="PRE: pre-market (04:00-09:30 New York); REGULAR; POST: after-hours (to 20:00, "
    "17:00 on early-close days); CLOSED. Only extended-hours limit orders trade in PRE and POST.",
)


@strawberry.type(name="Asset", description="A tradable instrument. `id` is its symbol.")
class AssetNode:
    id: strawberry.ID
    symbol: str
    name: str
    asset_class: AssetClassModel
    currency: str
    tick_size: Decimal = strawberry.field(description="Prices are multiples of it.")
    quantity_increment: Decimal = strawberry.field(
        description="Quantities are multiples of it (0.000001 when fractionable, else 1)."
    )
    fractionable: bool
    tradable: bool
    market_calendar: str = strawberry.field(description="XNYS (US equities) or 24x7.")
    reference_price: Decimal = strawberry.field(
        description="The latest reference price known to the platform (see marketPrice)."
    )

    @strawberry.field(description="Whether the asset's market is in session now.")
    def market_open(self) -> bool:
        return calendar(self.market_calendar).is_open(utcnow())

    @strawberry.field(
        description="The session the asset's market is in now (24x7 assets: always REGULAR)."
    )
    def market_session(self) -> Session:
        return calendar(self.market_calendar).session(utcnow())

    @strawberry.field(
        description="When the asset's market next opens (now, while it is open; 24x7 assets "
        "are always open)."
    )
    def next_open(self) -> datetime:
        now = utcnow()
        market = calendar(self.market_calendar)
        return now if market.is_open(now) else market.next_open(now)

    @classmethod
    def from_model(cls, a: AssetModel) -> AssetNode:
        return cls(
            id=strawberry.ID(a.symbol),
            symbol=a.symbol,
            name=a.name,
            asset_class=a.asset_class,
            currency=a.currency,
            tick_size=plain(a.tick_size),
            quantity_increment=plain(a.quantity_increment),
            fractionable=a.fractionable,
            tradable=a.tradable,
            market_calendar=a.market_calendar,
            reference_price=plain(a.reference_price),
        )


@strawberry.type
class AssetEdge:
    cursor: str
    node: AssetNode


@strawberry.type
class AssetConnection:
    edges: list[AssetEdge]
    page_info: PageInfo


@strawberry.input
class CreateAssetInput:
    symbol: str
    name: str
    asset_class: AssetClassModel
    currency: str = "USD"
    tick_size: str = strawberry.field(default="0.01", description='A decimal, e.g. "0.01".')
    fractionable: bool = True
    tradable: bool = True
    reference_price: str = strawberry.field(description='A decimal, e.g. "187.25".')
    market_calendar: str | None = strawberry.field(
        default=None, description="XNYS or 24x7; default: 24x7 for CRYPTO, else XNYS."
    )
    collar_bps: int = strawberry.field(
        default=500, description="Market orders never trade beyond reference ± this (bps)."
    )


@strawberry.type
class AssetPayload:
    asset: AssetNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
