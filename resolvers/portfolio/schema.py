"""Portfolios, performance, watchlists and (ADMIN) incoming stock transfers.

Another user's portfolio or watchlist does not exist for the caller: `null` from queries by id,
`NOT_FOUND` in mutation payloads and from `portfolioPerformance`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from models.errors import DomainError, ErrorCode
from models.performance import performance
from models.transfers import TransferRequest
from models.valuation import ref
from resolvers.context import Context
from resolvers.errors import ApiError, user_errors
from resolvers.permissions import IsAdmin, IsAuthenticated
from resolvers.portfolio.types import (
    AddPortfolioAssetInput,
    CreatePortfolioInput,
    CreateWatchlistInput,
    DeletePortfolioPayload,
    PerformanceType,
    PortfolioPayload,
    PortfolioType,
    RecordTransferInInput,
    RecordTransferInPayload,
    UpdatePortfolioInput,
    WatchlistPayload,
    WatchlistType,
)

PortfolioInfo = Info[Context, Any]


@strawberry.type
class PortfolioQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Your portfolios: the default (brokerage) one first, then tracked ones.",
    )
    async def portfolios(self, info: PortfolioInfo) -> list[PortfolioType]:
        principal = await info.context.require_principal()
        found = await info.context.services.portfolios.list_for(principal.user_id)
        return [PortfolioType.from_model(p) for p in found]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="A portfolio of yours by id; without id, the default (brokerage) one.",
    )
    async def portfolio(
        self, info: PortfolioInfo, id: strawberry.ID | None = None
    ) -> PortfolioType | None:
        principal = await info.context.require_principal()
        found = await info.context.services.portfolios.get(principal.user_id, id)
        return PortfolioType.from_model(found) if found else None

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Value over time and the time-weighted return. Defaults: the default "
        "portfolio, the last 30 days up to now. Errors: INVALID_DATE_RANGE, NOT_FOUND.",
    )
    async def portfolio_performance(
        self,
        info: PortfolioInfo,
        portfolio_id: strawberry.ID | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> PerformanceType | None:
        principal = await info.context.require_principal()
        found = await info.context.services.portfolios.get(principal.user_id, portfolio_id)
        if found is None:
            raise ApiError("No such portfolio.", ErrorCode.NOT_FOUND.value, field="portfolioId")
        services = info.context.services
        try:
            result = await performance(
                services.sessionmaker,
                services.redis,
                services.settings.redis_prefix,
                ref(found),
                start_date,
                end_date,
            )
        except DomainError as exc:
            problem = exc.problems[0]
            raise ApiError(problem.message, problem.code.value, field=problem.field) from None
        return PerformanceType.build(str(found.id), result)

    @strawberry.field(permission_classes=[IsAuthenticated], description="Oldest first.")
    async def watchlists(self, info: PortfolioInfo) -> list[WatchlistType]:
        principal = await info.context.require_principal()
        found = await info.context.services.watchlists.list_for(principal.user_id)
        return [WatchlistType.from_view(w) for w in found]

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def watchlist(self, info: PortfolioInfo, id: strawberry.ID) -> WatchlistType | None:
        principal = await info.context.require_principal()
        found = await info.context.services.watchlists.get(principal.user_id, id)
        return WatchlistType.from_view(found) if found else None


@strawberry.type
class PortfolioMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="A tracked portfolio. Code TOO_MANY_PORTFOLIOS past the limit.",
    )
    async def create_portfolio(
        self, info: PortfolioInfo, input: CreatePortfolioInput
    ) -> PortfolioPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.portfolios.create(
                principal.user_id, input.name, input.description
            )
        except DomainError as exc:
            return PortfolioPayload(errors=user_errors(exc))
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Rename or describe a tracked portfolio (NOT_ALLOWED on the default one).",
    )
    async def update_portfolio(
        self, info: PortfolioInfo, input: UpdatePortfolioInput
    ) -> PortfolioPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.portfolios.update(
                principal.user_id, input.id, input.name, input.description
            )
        except DomainError as exc:
            return PortfolioPayload(errors=user_errors(exc))
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Delete a tracked portfolio (NOT_ALLOWED on the default one).",
    )
    async def delete_portfolio(
        self, info: PortfolioInfo, id: strawberry.ID
    ) -> DeletePortfolioPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.portfolios.delete(principal.user_id, id)
        except DomainError as exc:
            return DeletePortfolioPayload(errors=user_errors(exc))
        return DeletePortfolioPayload(deleted_portfolio_id=strawberry.ID(str(found.id)))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Add (or add more of) an asset to a tracked portfolio. Codes NOT_FOUND, "
        "NOT_ALLOWED, UNKNOWN_ASSET, INVALID_QUANTITY, INVALID_PRICE, PORTFOLIO_FULL.",
    )
    async def add_portfolio_asset(
        self, info: PortfolioInfo, input: AddPortfolioAssetInput
    ) -> PortfolioPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.portfolios.add_asset(
                principal.user_id, input.portfolio_id, input.asset_id, input.quantity,
                input.purchase_price,
            )  # fmt: skip
        except DomainError as exc:
            return PortfolioPayload(errors=user_errors(exc))
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Remove an asset from a tracked portfolio. Codes NOT_FOUND (portfolio, or "
        "asset not in it), NOT_ALLOWED, UNKNOWN_ASSET.",
    )
    async def remove_portfolio_asset(
        self, info: PortfolioInfo, portfolio_id: strawberry.ID, asset_id: str
    ) -> PortfolioPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.portfolios.remove_asset(
                principal.user_id, portfolio_id, asset_id
            )
        except DomainError as exc:
            return PortfolioPayload(errors=user_errors(exc))
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="ADMIN: book an incoming ACATS transfer into the user's brokerage "
        "portfolio (shares against the platform's transfer clearing account) with a tax lot "
        "of the given total cost basis. Codes NOT_FOUND (user), UNKNOWN_ASSET, "
        "INVALID_QUANTITY, INVALID_AMOUNT, IDEMPOTENCY_KEY_REUSED.",
    )
    async def record_transfer_in(
        self, info: PortfolioInfo, input: RecordTransferInInput
    ) -> RecordTransferInPayload:
        principal = await info.context.require_principal()
        try:
            transfer = await info.context.services.transfers.record(
                TransferRequest(
                    user_id=str(input.user_id), asset_id=input.asset_id, quantity=input.quantity,
                    cost_basis=input.cost_basis, acquired_at=input.acquired_at,
                    idempotency_key=input.idempotency_key,
                ),
                recorded_by=principal.user_id,
            )  # fmt: skip
        except DomainError as exc:
            return RecordTransferInPayload(errors=user_errors(exc))
        return RecordTransferInPayload(transfer_id=strawberry.ID(str(transfer.id)))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Codes INVALID_INPUT (name), UNKNOWN_ASSET, WATCHLIST_FULL, "
        "TOO_MANY_WATCHLISTS. Repeated assets are kept once, first occurrence first.",
    )
    async def create_watchlist(
        self, info: PortfolioInfo, input: CreateWatchlistInput
    ) -> WatchlistPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.watchlists.create(
                principal.user_id, input.name, input.asset_ids
            )
        except DomainError as exc:
            return WatchlistPayload(errors=user_errors(exc))
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Append an asset (already there: no change). Codes NOT_FOUND, "
        "UNKNOWN_ASSET, WATCHLIST_FULL.",
    )
    async def add_to_watchlist(
        self, info: PortfolioInfo, watchlist_id: strawberry.ID, asset_id: str
    ) -> WatchlistPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.watchlists.add(
                principal.user_id, watchlist_id, asset_id
            )
        except DomainError as exc:
            return WatchlistPayload(errors=user_errors(exc))
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Remove an asset (not there: no change). Codes NOT_FOUND, UNKNOWN_ASSET.",
    )
    async def remove_from_watchlist(
        self, info: PortfolioInfo, watchlist_id: strawberry.ID, asset_id: str
    ) -> WatchlistPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.watchlists.remove(
                principal.user_id, watchlist_id, asset_id
            )
        except DomainError as exc:
            return WatchlistPayload(errors=user_errors(exc))
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Delete a watchlist; the payload holds its last state. Code NOT_FOUND.",
    )
    async def delete_watchlist(self, info: PortfolioInfo, id: strawberry.ID) -> WatchlistPayload:
        principal = await info.context.require_principal()
        try:
            found = await info.context.services.watchlists.delete(principal.user_id, id)
        except DomainError as exc:
            return WatchlistPayload(errors=user_errors(exc))
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))
