"""Per-request dataloaders: whatever a query asks for, a constant number of round trips.

Orders: the fills of every order on a page in one query (`order_fills`), their legs (a
bracket's exits, an OCO's stop) in one more (`order_legs`). The compliance
queue: the customers, their KYC profiles and the held withdrawals of a page, one query each
(`users`, `kyc_profiles`, `transactions`).

Batch functions call the domain services (they open the sessions; no loader opens one). Created
lazily by `Context.loaders`, so they live for one request (or one websocket
operation) and never serve another user's data. A portfolio of N holdings costs, whatever N:
one query for its holdings, one for their assets, one MGET for their quotes, one HGETALL for
the FX table, one query for the base currency and one for cash. Loads issued in the same tick
(every holding of every portfolio in `portfolios`) are batched together; results are cached
for the request, so `assets` and `totalValue` of the same portfolio share them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from models.assets import Asset
from models.compliance_tables import KycProfile
from models.funds import FundTransaction
from models.orders import Fill, Order
from models.quotes import QuoteData, read_quotes
from models.services import Services
from models.users import User
from models.valuation import PortfolioRef, Valuation


class Loaders:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.assets: DataLoader[str, Asset | None] = DataLoader(load_fn=self._assets)
        self.quotes: DataLoader[str, QuoteData | None] = DataLoader(load_fn=self._quotes)
        self.valuations: DataLoader[PortfolioRef, Valuation] = DataLoader(load_fn=self._valuations)
        self.order_fills: DataLoader[uuid.UUID, list[Fill]] = DataLoader(load_fn=self._fills)
        self.users: DataLoader[uuid.UUID, User | None] = DataLoader(load_fn=self._users)
        self.kyc_profiles: DataLoader[uuid.UUID, KycProfile | None] = DataLoader(
            load_fn=self._kyc_profiles
        )
        self.transactions: DataLoader[uuid.UUID, FundTransaction | None] = DataLoader(
            load_fn=self._transactions
        )
        self.order_legs: DataLoader[uuid.UUID, list[Order]] = DataLoader(load_fn=self._legs)

    # ---- batch functions ----

    async def _fills(self, order_ids: list[uuid.UUID]) -> Sequence[list[Fill]]:
        found = await self.services.orders.fills_of(order_ids)
        return [found[i] for i in order_ids]

    async def _users(self, ids: list[uuid.UUID]) -> Sequence[User | None]:
        found = await self.services.accounts.get_users(ids)
        return [found.get(i) for i in ids]

    async def _kyc_profiles(self, user_ids: list[uuid.UUID]) -> Sequence[KycProfile | None]:
        found = await self.services.kyc.profiles(user_ids)
        return [found.get(i) for i in user_ids]

    async def _transactions(self, ids: list[uuid.UUID]) -> Sequence[FundTransaction | None]:
        found = await self.services.funds.get_many(ids)
        return [found.get(i) for i in ids]

    async def _legs(self, order_ids: list[uuid.UUID]) -> Sequence[list[Order]]:
        found = await self.services.orders.legs_of(order_ids)
        return [found[i] for i in order_ids]

    async def _assets(self, symbols: list[str]) -> Sequence[Asset | None]:
        found = await self.services.assets.get_many(symbols)
        return [found.get(k) for k in symbols]

    async def _quotes(self, symbols: list[str]) -> Sequence[QuoteData | None]:
        found = await read_quotes(self.services.redis, self.services.settings.redis_prefix, symbols)
        return [found.get(k) for k in symbols]

    async def _valuations(self, refs: list[PortfolioRef]) -> Sequence[Valuation]:
        found = await self.services.portfolios.valuations(refs)
        return [found[r.id] for r in refs]

    # ---- composed reads ----

    async def valuation(self, ref: PortfolioRef) -> Valuation:
        """The portfolio's live valuation, computed once per request."""
        return await self.valuations.load(ref)
