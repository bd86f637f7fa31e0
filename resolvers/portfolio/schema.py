"""Portfolios, performance, watchlists and (ADMIN) incoming stock transfers.

Another user's portfolio or watchlist does not exist for the caller: `null` from queries by id,
`NOT_FOUND` in mutation payloads and from `portfolioPerformance`.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from models.errors import DomainError, ErrorCode
from models.transfers import TransferRequest
from models.valuation import ref
from resolvers.calls import SignedIn, query
from resolvers.errors import ApiError
from resolvers.mutations import mutation
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


@strawberry.type
class PortfolioQuery:
    @query(
        IsAuthenticated,
        description="Your portfolios: the default (brokerage) one first, then tracked ones.",
    )
    async def portfolios(self, call: SignedIn) -> list[PortfolioType]:
        found = await call.services.portfolios.list_for(call.principal.user_id)
        return [PortfolioType.from_model(p) for p in found]

    @query(
        IsAuthenticated,
        description="A portfolio of yours by id; without id, the default (brokerage) one.",
    )
    async def portfolio(
        self, call: SignedIn, id: strawberry.ID | None = None
    ) -> PortfolioType | None:
        found = await call.services.portfolios.get(call.principal.user_id, id)
        return PortfolioType.from_model(found) if found else None

    @query(
        IsAuthenticated,
        description="Value over time and the time-weighted return. Defaults: the default "
        "portfolio, the last 30 days up to now. Errors: INVALID_DATE_RANGE, NOT_FOUND.",
    )
    async def portfolio_performance(
        self,
        call: SignedIn,
        portfolio_id: strawberry.ID | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> PerformanceType | None:
        found = await call.services.portfolios.get(call.principal.user_id, portfolio_id)
        if found is None:
            raise ApiError("No such portfolio.", ErrorCode.NOT_FOUND.value, field="portfolioId")
        try:
            result = await call.services.performance.of(ref(found), start_date, end_date)
        except DomainError as exc:
            problem = exc.problems[0]
            raise ApiError(problem.message, problem.code.value, field=problem.field) from None
        return PerformanceType.build(str(found.id), result)

    @query(IsAuthenticated, description="Oldest first.")
    async def watchlists(self, call: SignedIn) -> list[WatchlistType]:
        found = await call.services.watchlists.list_for(call.principal.user_id)
        return [WatchlistType.from_view(w) for w in found]

    @query(IsAuthenticated)
    async def watchlist(self, call: SignedIn, id: strawberry.ID) -> WatchlistType | None:
        found = await call.services.watchlists.get(call.principal.user_id, id)
        return WatchlistType.from_view(found) if found else None


NOT_YOURS = (ErrorCode.NOT_FOUND, ErrorCode.NOT_ALLOWED)  # a tracked portfolio of the caller's


@strawberry.type
class PortfolioMutation:
    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.INVALID_INPUT, ErrorCode.TOO_MANY_PORTFOLIOS),
        payload=PortfolioPayload,
        description="A tracked portfolio (TOO_MANY_PORTFOLIOS past the limit).",
    )
    async def create_portfolio(
        self, call: SignedIn, input: CreatePortfolioInput
    ) -> PortfolioPayload:
        found = await call.services.portfolios.create(
            call.principal.user_id, input.name, input.description
        )
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @mutation(
        IsAuthenticated,
        errors=(*NOT_YOURS, ErrorCode.INVALID_INPUT),
        payload=PortfolioPayload,
        description="Rename or describe a tracked portfolio (NOT_ALLOWED on the default one).",
    )
    async def update_portfolio(
        self, call: SignedIn, input: UpdatePortfolioInput
    ) -> PortfolioPayload:
        found = await call.services.portfolios.update(
            call.principal.user_id, input.id, input.name, input.description
        )
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @mutation(
        IsAuthenticated,
        errors=NOT_YOURS,
        payload=DeletePortfolioPayload,
        description="Delete a tracked portfolio (NOT_ALLOWED on the default one).",
    )
    async def delete_portfolio(self, call: SignedIn, id: strawberry.ID) -> DeletePortfolioPayload:
        found = await call.services.portfolios.delete(call.principal.user_id, id)
        return DeletePortfolioPayload(deleted_portfolio_id=strawberry.ID(str(found.id)))

    @mutation(
        IsAuthenticated,
        errors=(
            *NOT_YOURS,
            ErrorCode.UNKNOWN_ASSET,
            ErrorCode.INVALID_QUANTITY,
            ErrorCode.INVALID_PRICE,
            ErrorCode.PORTFOLIO_FULL,
        ),
        payload=PortfolioPayload,
        description="Add (or add more of) an asset to a tracked portfolio.",
    )
    async def add_portfolio_asset(
        self, call: SignedIn, input: AddPortfolioAssetInput
    ) -> PortfolioPayload:
        found = await call.services.portfolios.add_asset(
            call.principal.user_id, input.portfolio_id, input.asset_id, input.quantity,
            input.purchase_price,
        )  # fmt: skip
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @mutation(
        IsAuthenticated,
        errors=(*NOT_YOURS, ErrorCode.UNKNOWN_ASSET),
        payload=PortfolioPayload,
        description="Remove an asset from a tracked portfolio (NOT_FOUND: no such portfolio, "
        "or the asset is not in it).",
    )
    async def remove_portfolio_asset(
        self, call: SignedIn, portfolio_id: strawberry.ID, asset_id: str
    ) -> PortfolioPayload:
        found = await call.services.portfolios.remove_asset(
            call.principal.user_id, portfolio_id, asset_id
        )
        return PortfolioPayload(portfolio=PortfolioType.from_model(found))

    @mutation(
        IsAdmin,
        errors=(
            ErrorCode.NOT_FOUND,
            ErrorCode.UNKNOWN_ASSET,
            ErrorCode.INVALID_QUANTITY,
            ErrorCode.INVALID_AMOUNT,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            ErrorCode.INVALID_INPUT,
        ),
        payload=RecordTransferInPayload,
        description="ADMIN: book an incoming ACATS transfer into the user's brokerage "
        "portfolio (shares against the platform's transfer clearing account) with a tax lot "
        "of the given total cost basis (NOT_FOUND: no such user).",
        audit="admin.transfer_in_recorded",
    )
    async def record_transfer_in(
        self, call: SignedIn, input: RecordTransferInInput
    ) -> RecordTransferInPayload:
        transfer = await call.services.transfers.record(
            TransferRequest(
                user_id=str(input.user_id), asset_id=input.asset_id, quantity=input.quantity,
                cost_basis=input.cost_basis, acquired_at=input.acquired_at,
                idempotency_key=input.idempotency_key,
            ),
            recorded_by=call.principal.user_id,
        )  # fmt: skip
        return RecordTransferInPayload(transfer_id=strawberry.ID(str(transfer.id)))

    @mutation(
        IsAuthenticated,
        errors=(
            ErrorCode.INVALID_INPUT,
            ErrorCode.UNKNOWN_ASSET,
            ErrorCode.WATCHLIST_FULL,
            ErrorCode.TOO_MANY_WATCHLISTS,
        ),
        payload=WatchlistPayload,
        description="Repeated assets are kept once, first occurrence first (INVALID_INPUT: "
        "the name).",
    )
    async def create_watchlist(
        self, call: SignedIn, input: CreateWatchlistInput
    ) -> WatchlistPayload:
        found = await call.services.watchlists.create(
            call.principal.user_id, input.name, input.asset_ids
        )
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.UNKNOWN_ASSET, ErrorCode.WATCHLIST_FULL),
        payload=WatchlistPayload,
        description="Append an asset (already there: no change).",
    )
    async def add_to_watchlist(
        self, call: SignedIn, watchlist_id: strawberry.ID, asset_id: str
    ) -> WatchlistPayload:
        found = await call.services.watchlists.add(call.principal.user_id, watchlist_id, asset_id)
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.UNKNOWN_ASSET),
        payload=WatchlistPayload,
        description="Remove an asset (not there: no change).",
    )
    async def remove_from_watchlist(
        self, call: SignedIn, watchlist_id: strawberry.ID, asset_id: str
    ) -> WatchlistPayload:
        found = await call.services.watchlists.remove(
            call.principal.user_id, watchlist_id, asset_id
        )
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=WatchlistPayload,
        description="Delete a watchlist; the payload holds its last state.",
    )
    async def delete_watchlist(self, call: SignedIn, id: strawberry.ID) -> WatchlistPayload:
        found = await call.services.watchlists.delete(call.principal.user_id, id)
        return WatchlistPayload(watchlist=WatchlistType.from_view(found))
