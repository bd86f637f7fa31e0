"""Portfolios: the default (brokerage) one and tracked ones, and the assets of tracked ones.

- Every user has exactly one default portfolio (`is_default`, a partial unique index), created
  lazily on first use (`ensure_default`) and by the snapshot job for every user with a ledger
  account. Its holdings are the user's positions (`models.positions`: fills and transfers in),
  never edited by hand; its value includes the user's cash.
- Tracked portfolios (`is_default` false) are what-if lists: the user adds an asset with a
  quantity and a purchase price (adding the same asset again merges: quantities add, costs add,
  so the average purchase price is the weighted one) and removes it. No money or shares move.
- Valuation: `models.valuation`. Tables: `models.portfolio_tables`. Transfers in (ACATS):
  `models.transfers`.
- External flows that change a portfolio's value without being a return (for the time-weighted
  return, `models.performance`): deposits and withdrawals (read from `fund_transactions`),
  transfers in, and for tracked portfolios each asset added or removed at its market value
  then; the last two are written to `portfolio_flows` in the base currency of the moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import (
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import validation
from models.assets import SYMBOL_RE, Asset
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.ledger import Ledger
from models.pagination import Page
from models.portfolio_tables import (
    DEFAULT_DESCRIPTION,
    DEFAULT_NAME,
    LOCK_NAMESPACE,
    MAX_DESCRIPTION,
    MAX_INPUT_DECIMALS,
    MAX_NAME,
    Portfolio,
    PortfolioAsset,
    PortfolioFlow,
)
from models.positions import Lot, RealizedGain
from models.positions import lots as open_lots
from models.positions import realized_gains as gains_of
from models.valuation import (
    PortfolioRef,
    Valuation,
    market_value,
    value_portfolios,
)


@dataclass(frozen=True, slots=True)
class PortfolioConfig:
    max_tracked: int = 20
    max_assets: int = 200


# ---- input parsing ----


def _printable(value: str) -> bool:
    """No control characters (PostgreSQL text cannot even hold NUL)."""
    return all(ch.isprintable() or ch in "\n\t" for ch in value)


def clean_name(raw: str | None, field: str = "name") -> str:
    name = (raw or "").strip()
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise DomainError.one(
            ErrorCode.INVALID_INPUT, f"A name is 1-{MAX_NAME} printable characters.", field
        )
    return name


def clean_description(raw: str | None) -> str | None:
    text_value = (raw or "").strip()
    if not _printable(text_value):
        raise DomainError.one(
            ErrorCode.INVALID_INPUT, "The description has control characters.", "description"
        )
    if len(text_value) > MAX_DESCRIPTION:
        raise DomainError.one(
            ErrorCode.INVALID_INPUT,
            f"A description is at most {MAX_DESCRIPTION} characters.",
            "description",
        )
    return text_value or None


def parse_id(raw: str | uuid.UUID | None) -> uuid.UUID | None:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw or "").strip())
    except ValueError:
        return None


def clean_symbol(raw: str | None) -> str:
    """The symbol as stored (upper case), or "" when it cannot be one (never a known asset)."""
    symbol = (raw or "").strip().upper()
    return symbol if SYMBOL_RE.match(symbol) else ""


def lock_key(user_id: uuid.UUID) -> int:
    """A signed 32-bit key: with LOCK_NAMESPACE, one user's portfolio (or watchlist) changes."""
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


def not_found(what: str = "portfolio", field: str | None = "portfolioId") -> DomainError:
    return DomainError.one(ErrorCode.NOT_FOUND, f"No such {what}.", field)


def unknown_asset(symbol: str, field: str = "assetId") -> DomainError:
    return DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol or '(empty)'}.", field)


class Portfolios:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        redis: Redis,
        redis_prefix: str,
        config: PortfolioConfig,
    ) -> None:
        self._sm = sessionmaker
        self.ledger = ledger
        self.redis = redis
        self.prefix = redis_prefix
        self.config = config

    # ---- reads ----

    @staticmethod
    async def ensure_default(s: AsyncSession, user_id: uuid.UUID) -> Portfolio:
        query = select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default)
        found = (await s.execute(query)).scalar_one_or_none()
        if found is not None:
            return found
        now = utcnow()
        await s.execute(
            insert(Portfolio)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                name=DEFAULT_NAME,
                description=DEFAULT_DESCRIPTION,
                is_default=True,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[Portfolio.user_id], index_where=text("is_default")
            )
        )
        return (await s.execute(query)).scalar_one()

    async def default(self, user_id: uuid.UUID) -> Portfolio:
        async with self._sm.begin() as s:
            return await self.ensure_default(s, user_id)

    async def list_for(self, user_id: uuid.UUID) -> list[Portfolio]:
        """The default portfolio first, then tracked ones oldest first."""
        async with self._sm.begin() as s:
            default = await self.ensure_default(s, user_id)
            tracked = await s.scalars(
                select(Portfolio)
                .where(Portfolio.user_id == user_id, Portfolio.is_default.is_(False))
                .order_by(Portfolio.created_at, Portfolio.id)
            )
            return [default, *tracked]

    async def get(self, user_id: uuid.UUID, portfolio_id: str | None) -> Portfolio | None:
        """The caller's portfolio (None for another user's: it does not exist for them)."""
        if portfolio_id is None:
            return await self.default(user_id)
        ident = parse_id(portfolio_id)
        if ident is None:
            return None
        async with self._sm() as s:
            found = await s.get(Portfolio, ident)
        return found if found is not None and found.user_id == user_id else None

    # ---- tracked portfolios ----

    async def _lock_user(self, s: AsyncSession, user_id: uuid.UUID) -> None:
        await s.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, lock_key(user_id))))

    async def _tracked_for_update(
        self, s: AsyncSession, user_id: uuid.UUID, portfolio_id: str | None
    ) -> Portfolio:
        ident = parse_id(portfolio_id)
        found = (
            None
            if ident is None
            else (
                await s.execute(select(Portfolio).where(Portfolio.id == ident).with_for_update())
            ).scalar_one_or_none()
        )
        if found is None or found.user_id != user_id:
            raise not_found()
        if found.is_default:
            raise DomainError.one(
                ErrorCode.NOT_ALLOWED,
                "The brokerage portfolio follows your trades; it cannot be edited by hand.",
                "portfolioId",
            )
        return found

    async def create(
        self, user_id: uuid.UUID, name: str | None, description: str | None
    ) -> Portfolio:
        checks = ProblemCollector()
        clean = checks.check(lambda: clean_name(name))
        about = checks.check(lambda: clean_description(description))
        checks.raise_if_any()
        assert clean is not None
        async with self._sm.begin() as s:
            await self._lock_user(s, user_id)
            await self.ensure_default(s, user_id)
            count = (
                await s.execute(
                    select(func.count()).where(
                        Portfolio.user_id == user_id, Portfolio.is_default.is_(False)
                    )
                )
            ).scalar_one()
            if count >= self.config.max_tracked:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_PORTFOLIOS,
                    f"At most {self.config.max_tracked} tracked portfolios.",
                )
            now = utcnow()
            portfolio = Portfolio(
                id=uuid.uuid4(),
                user_id=user_id,
                name=clean,
                description=about,
                is_default=False,
                created_at=now,
                updated_at=now,
            )
            s.add(portfolio)
        return portfolio

    async def update(
        self,
        user_id: uuid.UUID,
        portfolio_id: str | None,
        name: str | None,
        description: str | None,
    ) -> Portfolio:
        checks = ProblemCollector()
        clean = checks.check(lambda: clean_name(name)) if name is not None else None
        about = checks.check(lambda: clean_description(description))
        checks.raise_if_any()
        async with self._sm.begin() as s:
            portfolio = await self._tracked_for_update(s, user_id, portfolio_id)
            if clean is not None:
                portfolio.name = clean
            if description is not None:
                portfolio.description = about
            portfolio.updated_at = utcnow()
        return portfolio

    async def delete(self, user_id: uuid.UUID, portfolio_id: str | None) -> Portfolio:
        async with self._sm.begin() as s:
            portfolio = await self._tracked_for_update(s, user_id, portfolio_id)
            await s.delete(portfolio)
        return portfolio

    async def add_asset(
        self,
        user_id: uuid.UUID,
        portfolio_id: str | None,
        asset_id: str | None,
        quantity: str | None,
        purchase_price: str | None,
    ) -> Portfolio:
        symbol = clean_symbol(asset_id)
        checks = ProblemCollector()
        qty = checks.check(
            lambda: validation.parse_decimal(
                quantity,
                field="quantity",
                code=ErrorCode.INVALID_QUANTITY,
                what="The quantity",
                max_decimals=MAX_INPUT_DECIMALS,
            )
        )
        price = checks.check(
            lambda: validation.parse_decimal(
                purchase_price,
                field="purchasePrice",
                code=ErrorCode.INVALID_PRICE,
                what="The purchase price",
                max_decimals=MAX_INPUT_DECIMALS,
            )
        )
        async with self._sm.begin() as s:
            portfolio = await self._tracked_for_update(s, user_id, portfolio_id)
            asset = await s.get(Asset, symbol) if symbol else None
            if asset is None:
                checks.problems.insert(0, Problem(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol}.",
                                                  "assetId"))  # fmt: skip
            checks.raise_if_any()
            assert asset is not None
            assert qty is not None
            assert price is not None
            held = (
                await s.execute(
                    select(PortfolioAsset.asset_id).where(
                        PortfolioAsset.portfolio_id == portfolio.id
                    )
                )
            ).scalars()
            symbols = set(held)
            if symbol not in symbols and len(symbols) >= self.config.max_assets:
                raise DomainError.one(
                    ErrorCode.PORTFOLIO_FULL,
                    f"A portfolio holds at most {self.config.max_assets} assets.",
                    "assetId",
                )
            now = utcnow()
            stmt = insert(PortfolioAsset).values(
                portfolio_id=portfolio.id,
                asset_id=symbol,
                user_id=user_id,
                quantity=qty,
                cost_basis=qty * price,
                added_at=now,
                updated_at=now,
            )
            await s.execute(
                stmt.on_conflict_do_update(
                    constraint="pk_portfolio_assets",
                    set_={
                        "quantity": PortfolioAsset.quantity + qty,
                        "cost_basis": PortfolioAsset.cost_basis + qty * price,
                        "updated_at": now,
                    },
                )
            )
            amount, base = await market_value(s, self.redis, self.prefix, user_id, asset, qty)
            s.add(
                PortfolioFlow(
                    portfolio_id=portfolio.id, user_id=user_id, kind="ASSET_ADDED",
                    amount=amount, currency=base, reference=symbol, at=now,
                )
            )  # fmt: skip
            portfolio.updated_at = now
        return portfolio

    async def remove_asset(
        self, user_id: uuid.UUID, portfolio_id: str | None, asset_id: str | None
    ) -> Portfolio:
        symbol = clean_symbol(asset_id)
        async with self._sm.begin() as s:
            portfolio = await self._tracked_for_update(s, user_id, portfolio_id)
            asset = await s.get(Asset, symbol) if symbol else None
            if asset is None:
                raise unknown_asset(symbol)
            row = await s.get(PortfolioAsset, (portfolio.id, symbol))
            if row is None:
                raise not_found(f"{symbol} in this portfolio", "assetId")
            amount, base = await market_value(
                s, self.redis, self.prefix, user_id, asset, row.quantity
            )
            await s.delete(row)
            now = utcnow()
            s.add(
                PortfolioFlow(
                    portfolio_id=portfolio.id, user_id=user_id, kind="ASSET_REMOVED",
                    amount=-amount, currency=base, reference=symbol, at=now,
                )
            )  # fmt: skip
            portfolio.updated_at = now
        return portfolio

    # ---- reads for the API (outside loaders) ----

    async def valuations(self, refs: Sequence[PortfolioRef]) -> dict[uuid.UUID, Valuation]:
        async with self._sm() as s:
            return await value_portfolios(s, self.redis, self.prefix, refs)

    async def lots(
        self, user_id: uuid.UUID, asset_id: str | None, first: int | None, after: str | None
    ) -> Page[Lot]:
        """Open FIFO tax lots of the brokerage portfolio (`positions.lots`)."""
        async with self._sm() as s:
            return await open_lots(s, user_id, asset_id=asset_id, first=first, after=after)

    async def realized_gains(
        self, user_id: uuid.UUID, asset_id: str | None, first: int | None, after: str | None
    ) -> Page[RealizedGain]:
        async with self._sm() as s:
            return await gains_of(s, user_id, asset_id=asset_id, first=first, after=after)
