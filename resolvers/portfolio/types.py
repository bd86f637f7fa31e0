"""GraphQL types of the portfolio domain: portfolios, holdings, lots, gains, performance,
watchlists."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from bourse.money import plain as plain_decimal
from models.errors import DomainError
from models.pagination import encode_cursor
from models.performance import Performance
from models.portfolio_tables import Portfolio
from models.portfolios import clean_symbol
from models.positions import Lot, RealizedGain, is_long_term
from models.valuation import PortfolioRef
from models.valuation import ref as portfolio_ref
from models.watchlists import WatchlistView
from resolvers.context import Context
from resolvers.errors import UserError, bad_input
from resolvers.funds.types import AmountInput
from resolvers.market.types import AssetNode
from resolvers.relay import PageInfo, page_info

PortfolioInfo = Info[Context, Any]


@strawberry.type(
    name="Holding",
    description="What a portfolio holds of one asset. Money fields without `Base` are in the "
    "asset's `currency`; `currentValueBase` is in the portfolio's base currency.",
)
class HoldingType:
    asset_id: str
    currency: str
    quantity: Decimal
    average_cost: Decimal = strawberry.field(
        description="Cost of the shares held per share: FIFO (the lots still open)."
    )
    cost_basis: Decimal = strawberry.field(description="quantity * averageCost, rounded.")
    price: Decimal = strawberry.field(description="The live price (or the reference price).")
    price_at: datetime
    current_value: Decimal = strawberry.field(description="quantity * price, rounded.")
    current_value_base: Decimal
    unrealized_pnl: Decimal = strawberry.field(description="currentValue - costBasis.")
    realized_pnl: Decimal = strawberry.field(
        description="Gains realized by sales of this asset so far (brokerage portfolio only)."
    )

    @strawberry.field(description="The asset's reference data.")
    async def asset(self, info: PortfolioInfo) -> AssetNode | None:
        found = await info.context.loaders.assets.load(self.asset_id)
        return AssetNode.from_model(found) if found else None


@strawberry.type(name="TaxLot", description="A FIFO tax lot of the brokerage portfolio.")
class LotType:
    id: strawberry.ID
    asset_id: str
    source: str = strawberry.field(description="FILL or TRANSFER.")
    acquired_at: datetime
    quantity: Decimal
    cost: Decimal
    remaining_quantity: Decimal
    remaining_cost: Decimal
    wash_sale_adjustment: Decimal = strawberry.field(
        description="Loss disallowed by wash sales and added to this lot's basis (the part "
        "carried by the shares still held); the 1099-B counts it when they are sold."
    )
    adjusted_cost: Decimal = strawberry.field(description="remainingCost + washSaleAdjustment.")

    @classmethod
    def from_model(cls, lot: Lot, adjustment: Decimal = Decimal(0)) -> LotType:
        return cls(
            wash_sale_adjustment=plain_decimal(adjustment),
            adjusted_cost=plain_decimal(lot.remaining_cost + adjustment),
            id=strawberry.ID(str(lot.id)),
            asset_id=lot.asset_id,
            source=lot.source.value,
            acquired_at=lot.acquired_at,
            quantity=plain_decimal(lot.quantity),
            cost=plain_decimal(lot.cost),
            remaining_quantity=plain_decimal(lot.remaining_quantity),
            remaining_cost=plain_decimal(lot.remaining_cost),
        )


@strawberry.type
class TaxLotEdge:
    cursor: str
    node: LotType


@strawberry.type
class TaxLotConnection:
    edges: list[TaxLotEdge]
    page_info: PageInfo


@strawberry.type(
    name="RealizedGain",
    description="One lot slice consumed by a sale (a tax-form line), in `currency`.",
)
class RealizedGainType:
    id: strawberry.ID
    asset_id: str
    currency: str
    quantity: Decimal
    cost_basis: Decimal
    proceeds: Decimal
    gain: Decimal
    acquired_at: datetime
    sold_at: datetime
    long_term: bool = strawberry.field(description="Held more than 365 days.")

    @classmethod
    def from_model(cls, g: RealizedGain) -> RealizedGainType:
        return cls(
            id=strawberry.ID(str(g.id)),
            asset_id=g.asset_id,
            currency=g.currency,
            quantity=plain_decimal(g.quantity),
            cost_basis=plain_decimal(g.cost_basis),
            proceeds=plain_decimal(g.proceeds),
            gain=plain_decimal(g.gain),
            acquired_at=g.acquired_at,
            sold_at=g.sold_at,
            long_term=is_long_term(g.acquired_at, g.sold_at),
        )


@strawberry.type
class RealizedGainEdge:
    cursor: str
    node: RealizedGainType


@strawberry.type
class RealizedGainConnection:
    edges: list[RealizedGainEdge]
    page_info: PageInfo


def _empty_page_info() -> PageInfo:
    return PageInfo(has_next_page=False, end_cursor=None)


@strawberry.type(
    name="Portfolio",
    description="The default (brokerage) portfolio holds what your trades and transfers "
    "bought; tracked portfolios hold what you add by hand. Totals are in `baseCurrency`.",
)
class PortfolioType:
    id: strawberry.ID
    name: str
    description: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime
    ref: strawberry.Private[PortfolioRef]

    @classmethod
    def from_model(cls, p: Portfolio) -> PortfolioType:
        return cls(
            id=strawberry.ID(str(p.id)),
            name=p.name,
            description=p.description,
            is_default=p.is_default,
            created_at=p.created_at,
            updated_at=p.updated_at,
            ref=portfolio_ref(p),
        )

    @strawberry.field(description="Holdings by symbol.")
    async def assets(self, info: PortfolioInfo) -> list[HoldingType]:
        v = await info.context.loaders.valuation(self.ref)
        return [
            HoldingType(
                asset_id=h.asset_id,
                currency=h.currency,
                quantity=h.quantity,
                average_cost=h.average_cost,
                cost_basis=h.cost_basis,
                price=h.price,
                price_at=h.price_at,
                current_value=h.current_value,
                current_value_base=h.current_value_base,
                unrealized_pnl=h.unrealized_pnl,
                realized_pnl=h.realized_pnl,
            )
            for h in v.holdings
        ]

    @strawberry.field(description="The user's base currency: totals are expressed in it.")
    async def base_currency(self, info: PortfolioInfo) -> str:
        return (await info.context.loaders.valuation(self.ref)).currency

    @strawberry.field(description="Sum of the holdings' currentValueBase.")
    async def holdings_value(self, info: PortfolioInfo) -> Decimal:
        return (await info.context.loaders.valuation(self.ref)).holdings_value

    @strawberry.field(
        description="Cash of every currency in the base currency (default portfolio; 0 else)."
    )
    async def cash(self, info: PortfolioInfo) -> Decimal:
        return (await info.context.loaders.valuation(self.ref)).cash

    @strawberry.field(description="holdingsValue + cash, in the base currency.")
    async def total_value(self, info: PortfolioInfo) -> Decimal:
        return (await info.context.loaders.valuation(self.ref)).total

    @strawberry.field(description="Open FIFO tax lots, oldest first (brokerage portfolio).")
    async def lots(
        self,
        info: PortfolioInfo,
        asset_id: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> TaxLotConnection:
        if not self.is_default:
            return TaxLotConnection(edges=[], page_info=_empty_page_info())
        try:
            page = await info.context.services.portfolios.lots(
                self.ref.user_id,
                None if asset_id is None else clean_symbol(asset_id) or "-",
                first,
                after,
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        carried = await info.context.services.wash_sales.of(self.ref.user_id)
        edges = [
            TaxLotEdge(
                cursor=encode_cursor(lot.acquired_at, lot.seq),
                node=LotType.from_model(lot, carried.get(lot.id, Decimal(0))),
            )
            for lot in page.items
        ]
        return TaxLotConnection(
            edges=edges,
            page_info=page_info(edges, page.has_next_page),
        )

    @strawberry.field(description="Realized gains, newest sale first (brokerage portfolio).")
    async def realized_gains(
        self,
        info: PortfolioInfo,
        asset_id: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> RealizedGainConnection:
        if not self.is_default:
            return RealizedGainConnection(edges=[], page_info=_empty_page_info())
        try:
            page = await info.context.services.portfolios.realized_gains(
                self.ref.user_id,
                None if asset_id is None else clean_symbol(asset_id) or "-",
                first,
                after,
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            RealizedGainEdge(
                cursor=encode_cursor(g.sold_at, g.id), node=RealizedGainType.from_model(g)
            )
            for g in page.items
        ]
        return RealizedGainConnection(
            edges=edges,
            page_info=page_info(edges, page.has_next_page),
        )


@strawberry.type
class PerformancePoint:
    timestamp: datetime
    value: Decimal


@strawberry.type(
    name="PortfolioPerformance",
    description="Values in `currency` (the base currency). Percentages are in percent.",
)
class PerformanceType:
    portfolio_id: strawberry.ID
    currency: str
    start_value: Decimal
    end_value: Decimal
    percentage_change: Decimal | None = strawberry.field(
        description="(endValue - startValue) / startValue * 100: includes deposits and "
        "withdrawals. Null when startValue is 0."
    )
    time_weighted_return: Decimal | None = strawberry.field(
        description="Chained sub-period returns between valuation points, external flows "
        "(deposits, withdrawals, transfers) removed, * 100. See docs/ARCHITECTURE.md."
    )
    net_flows: Decimal = strawberry.field(description="External flows within the range.")
    series: list[PerformancePoint]

    @classmethod
    def build(cls, portfolio_id: str, p: Performance) -> PerformanceType:
        return cls(
            portfolio_id=strawberry.ID(portfolio_id),
            currency=p.currency,
            start_value=p.start_value,
            end_value=p.end_value,
            percentage_change=p.percentage_change,
            time_weighted_return=p.time_weighted_return,
            net_flows=p.net_flows,
            series=[PerformancePoint(timestamp=pt.at, value=pt.value) for pt in p.series],
        )


@strawberry.type(name="WatchlistItem")
class WatchlistItemType:
    asset_id: str
    added_at: datetime

    @strawberry.field(description="The live price (or the reference price), asset currency.")
    async def price(self, info: PortfolioInfo) -> Decimal | None:
        loaders = info.context.loaders
        asset = await loaders.assets.load(self.asset_id)
        if asset is None:
            return None
        quote = await loaders.quotes.load(self.asset_id)
        return plain_decimal(quote.price if quote else asset.reference_price)

    @strawberry.field
    async def asset(self, info: PortfolioInfo) -> AssetNode | None:
        found = await info.context.loaders.assets.load(self.asset_id)
        return AssetNode.from_model(found) if found else None


@strawberry.type(name="Watchlist", description="Assets in the order they were added.")
class WatchlistType:
    id: strawberry.ID
    name: str
    created_at: datetime
    asset_ids: list[str]
    items: list[WatchlistItemType]

    @classmethod
    def from_view(cls, w: WatchlistView) -> WatchlistType:
        return cls(
            id=strawberry.ID(str(w.id)),
            name=w.name,
            created_at=w.created_at,
            asset_ids=w.asset_ids,
            items=[WatchlistItemType(asset_id=i.asset_id, added_at=i.added_at) for i in w.items],
        )


# ---- inputs and payloads ----


@strawberry.input
class CreatePortfolioInput:
    name: str
    description: str | None = None


@strawberry.input
class UpdatePortfolioInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = strawberry.field(
        default=None, description="An empty string clears it."
    )


@strawberry.input
class AddPortfolioAssetInput:
    portfolio_id: strawberry.ID
    asset_id: str
    quantity: AmountInput = strawberry.field(description='e.g. "10" or "0.5".')
    purchase_price: AmountInput = strawberry.field(
        description="Per share, in the asset's currency. Adding an asset already held merges "
        "(the average purchase price becomes the weighted one)."
    )


@strawberry.input
class CreateWatchlistInput:
    name: str
    asset_ids: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class RecordTransferInInput:
    user_id: strawberry.ID
    asset_id: str
    quantity: AmountInput
    cost_basis: AmountInput = strawberry.field(
        description="The TOTAL cost basis of the shares transferred, in the asset's currency."
    )
    acquired_at: datetime | None = strawberry.field(
        default=None, description="When the shares were originally bought (default: now)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional: repeating it returns the first transfer and books nothing.",
    )


@strawberry.type
class PortfolioPayload:
    portfolio: PortfolioType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePortfolioPayload:
    deleted_portfolio_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WatchlistPayload:
    watchlist: WatchlistType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RecordTransferInPayload:
    transfer_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
