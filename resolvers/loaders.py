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

import asyncio
import uuid
from collections.abc import Sequence
from decimal import Decimal

from strawberry.dataloader import DataLoader

from models.assets import Asset
from models.compliance_tables import KycProfile
from models.funds import FundTransaction
from models.orders import Fill, Order
from models.quotes import QuoteData, read_quotes, usd_per_unit
from models.services import Services
from models.users import User
from models.valuation import HoldingRow, PortfolioRef, Valuation, valuation


class Loaders:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.assets: DataLoader[str, Asset | None] = DataLoader(load_fn=self._assets)
        self.quotes: DataLoader[str, QuoteData | None] = DataLoader(load_fn=self._quotes)
        self.holdings: DataLoader[PortfolioRef, list[HoldingRow]] = DataLoader(
            load_fn=self._holdings
        )
        self.cash: DataLoader[uuid.UUID, dict[str, Decimal]] = DataLoader(load_fn=self._cash)
        self.base_currency: DataLoader[uuid.UUID, str] = DataLoader(load_fn=self._bases)
        self.order_fills: DataLoader[uuid.UUID, list[Fill]] = DataLoader(load_fn=self._fills)
        self.users: DataLoader[uuid.UUID, User | None] = DataLoader(load_fn=self._users)
        self.kyc_profiles: DataLoader[uuid.UUID, KycProfile | None] = DataLoader(
            load_fn=self._kyc_profiles
        )
        self.transactions: DataLoader[uuid.UUID, FundTransaction | None] = DataLoader(
            load_fn=self._transactions
        )
        self.order_legs: DataLoader[uuid.UUID, list[Order]] = DataLoader(load_fn=self._legs)
        self._rates: asyncio.Future[dict[str, Decimal]] | None = None
        self._valuations: dict[PortfolioRef, asyncio.Future[Valuation]] = {}

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

    async def _holdings(self, refs: list[PortfolioRef]) -> Sequence[list[HoldingRow]]:
        found = await self.services.portfolios.holdings(refs)
        return [found[r.id] for r in refs]

    async def _cash(self, user_ids: list[uuid.UUID]) -> Sequence[dict[str, Decimal]]:
        found = await self.services.portfolios.cash_balances(user_ids)
        return [found[u] for u in user_ids]

    async def _bases(self, user_ids: list[uuid.UUID]) -> Sequence[str]:
        found = await self.services.portfolios.base_currencies(user_ids)
        return [found[u] for u in user_ids]

    # ---- composed reads ----

    async def rates(self) -> dict[str, Decimal]:
        """The FX table (USD per unit), read once per request."""
        if self._rates is None:
            self._rates = asyncio.ensure_future(
                usd_per_unit(self.services.redis, self.services.settings.redis_prefix)
            )
        return await self._rates

    async def valuation(self, ref: PortfolioRef) -> Valuation:
        """The portfolio's live valuation, computed once per request."""
        if ref not in self._valuations:
            self._valuations[ref] = asyncio.ensure_future(self._value(ref))
        return await self._valuations[ref]

    async def _value(self, ref: PortfolioRef) -> Valuation:
        rows, base, cash = await asyncio.gather(
            self.holdings.load(ref),
            self.base_currency.load(ref.user_id),
            self.cash.load(ref.user_id) if ref.is_default else _no_cash(),
        )
        symbols = [r.asset_id for r in rows]
        assets, quotes, rates = await asyncio.gather(
            self.assets.load_many(symbols), self.quotes.load_many(symbols), self.rates()
        )
        return valuation(
            rows,
            {a.symbol: a for a in assets if a is not None},
            {q.asset_id: q for q in quotes if q is not None},
            rates,
            base,
            cash,
        )


async def _no_cash() -> dict[str, Decimal]:
    return {}
