"""Portfolios: the default (brokerage) one, tracked ones, valuation and incoming transfers.

- Every user has exactly one default portfolio (`is_default`, a partial unique index), created
  lazily on first use (`ensure_default`) and by the snapshot job for every user with a ledger
  account. Its holdings are the user's positions (`models.positions`: fills and transfers in),
  never edited by hand; its value includes the user's cash.
- Tracked portfolios (`is_default` false) are what-if lists: the user adds an asset with a
  quantity and a purchase price (adding the same asset again merges: quantities add, costs add,
  so the average purchase price is the weighted one) and removes it. No money or shares move.
- Valuation (`value_holding`): the live price (Redis quote, else the asset's reference price)
  * quantity in the asset's currency, rounded to its minor unit; converted to the user's base
  currency with the current FX table and rounded there. `total_value` is the sum of the rounded
  holdings in the base currency plus, for the default portfolio, every cash balance (total,
  held included) converted the same way, so the numbers a client sees add up.
- External flows that change a portfolio's value without being a return (for the time-weighted
  return, `models.performance`): deposits and withdrawals (read from `fund_transactions`),
  transfers in, and for tracked portfolios each asset added or removed at its market value
  then; the last two are written to `portfolio_flows` in the base currency of the moment.
- `record_transfer_in` (ADMIN): an ACATS transfer in books user SHARES +q against the
  platform's TRANSFER clearing account for the asset (one ledger entry) and opens a lot whose
  cost is `costBasis` (the TOTAL cost of the shares transferred, as ACATS reports it), acquired
  at `acquiredAt` (default now; the original purchase date keeps long/short-term right).
  Optional `idempotencyKey`, unique per user: the same key and request returns the first
  transfer; a different request with it is IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from redis.asyncio import Redis
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import MINOR_UNITS, plain, round_cash
from models import validation
from models.assets import SYMBOL_RE, Asset
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.ledger import AMOUNT, ZERO, AccountKind, Ledger, LedgerAccount, Leg
from models.pagination import Page
from models.positions import Lot, LotSource, PositionRow, RealizedGain, open_lot, open_positions
from models.positions import lots as open_lots
from models.positions import realized_gains as gains_of
from models.quotes import QuoteData, convert, price_of, read_quotes, usd_per_unit
from models.users import User

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_INPUT_DECIMALS = 8  # quantities and prices typed by people (tracked portfolios)
DEFAULT_NAME = "Brokerage"
DEFAULT_DESCRIPTION = "Your brokerage account: holdings from your trades and transfers."
LOCK_NAMESPACE = 0x706F7274  # "port": advisory locks of one user's portfolio changes


class Portfolio(Base):
    __tablename__ = "portfolios"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    description: Mapped[str | None] = mapped_column(String(MAX_DESCRIPTION))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_portfolios_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index("ix_portfolios_user", "user_id", "created_at"),
    )


class PortfolioAsset(Base):
    """A tracked portfolio's holding (never the default portfolio's: those are positions)."""

    __tablename__ = "portfolio_assets"

    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    user_id: Mapped[uuid.UUID]  # denormalised (partitioning key)
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT)  # sum of quantity * purchase price
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("portfolio_id", "asset_id", name="pk_portfolio_assets"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cost_basis >= 0", name="cost_nonnegative"),
    )


class PortfolioFlow(Base):
    """An external flow into (+) or out of (-) a portfolio other than a deposit or withdrawal,
    valued when it happened, in the user's base currency then."""

    __tablename__ = "portfolio_flows"

    id: Mapped[uuid.UUID] = uuid_pk()
    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(32))  # TRANSFER_IN, ASSET_ADDED, ASSET_REMOVED
    amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_portfolio_flows_portfolio_at", "portfolio_id", "at"),)


class StockTransfer(Base):
    """An incoming ACATS transfer booked by staff."""

    __tablename__ = "stock_transfers"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    quantity: Mapped[Decimal] = mapped_column(AMOUNT)
    cost_basis: Mapped[Decimal] = mapped_column(AMOUNT)  # total, in the asset's currency
    acquired_at: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    journal_entry_id: Mapped[uuid.UUID]
    lot_id: Mapped[uuid.UUID]
    recorded_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_stock_transfers_idempotency"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cost_basis >= 0", name="cost_nonnegative"),
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


# ---- valuation ----


@dataclass(frozen=True, slots=True)
class HoldingRow:
    """What a portfolio holds of one asset, before pricing."""

    asset_id: str
    quantity: Decimal
    cost_basis: Decimal  # total, asset currency
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class HoldingValue:
    asset_id: str
    currency: str
    quantity: Decimal
    average_cost: Decimal
    cost_basis: Decimal
    price: Decimal
    price_at: datetime
    current_value: Decimal
    current_value_base: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


def value_holding(
    row: HoldingRow, asset: Asset, quote: QuoteData, rates: dict[str, Decimal], base: str
) -> HoldingValue:
    currency = asset.currency
    current = row.quantity * quote.price
    cost = round_cash(row.cost_basis, currency, ROUND_HALF_EVEN)
    value = round_cash(current, currency, ROUND_HALF_EVEN)
    return HoldingValue(
        asset_id=row.asset_id,
        currency=currency,
        quantity=plain(row.quantity),
        average_cost=plain((row.cost_basis / row.quantity).quantize(Decimal("1e-8"))),
        cost_basis=cost,
        price=plain(quote.price),
        price_at=quote.timestamp,
        current_value=value,
        current_value_base=round_cash(
            convert(current, currency, base, rates), base, ROUND_HALF_EVEN
        ),
        unrealized_pnl=value - cost,
        realized_pnl=round_cash(row.realized_pnl, currency, ROUND_HALF_EVEN),
    )


def cash_value(balances: dict[str, Decimal], rates: dict[str, Decimal], base: str) -> Decimal:
    return sum(
        (
            round_cash(convert(v, ccy, base, rates), base, ROUND_HALF_EVEN)
            for ccy, v in balances.items()
        ),
        round_cash(ZERO, base, ROUND_HALF_EVEN),
    )


@dataclass(frozen=True, slots=True)
class Valuation:
    currency: str
    holdings: list[HoldingValue]
    holdings_value: Decimal
    cash: Decimal
    total: Decimal


def valuation(
    rows: Sequence[HoldingRow],
    assets: dict[str, Asset],
    quotes: dict[str, QuoteData],
    rates: dict[str, Decimal],
    base: str,
    cash: dict[str, Decimal] | None,
) -> Valuation:
    holdings = [
        value_holding(r, assets[r.asset_id], price_of(assets[r.asset_id], quotes), rates, base)
        for r in rows
        if r.asset_id in assets
    ]
    held = sum((h.current_value_base for h in holdings), round_cash(ZERO, base, ROUND_HALF_EVEN))
    money = cash_value(cash or {}, rates, base)
    return Valuation(base, holdings, held, money, held + money)


# ---- batched reads (the dataloaders and the snapshot job use these) ----


@dataclass(frozen=True, slots=True)
class PortfolioRef:
    id: uuid.UUID
    user_id: uuid.UUID
    is_default: bool


def ref(p: Portfolio) -> PortfolioRef:
    return PortfolioRef(p.id, p.user_id, p.is_default)


async def holdings_of(
    s: AsyncSession, refs: Sequence[PortfolioRef]
) -> dict[uuid.UUID, list[HoldingRow]]:
    """Holdings of many portfolios in at most two queries (positions; tracked assets)."""
    out: dict[uuid.UUID, list[HoldingRow]] = {r.id: [] for r in refs}
    defaults = {r.user_id: r.id for r in refs if r.is_default}
    tracked = [r.id for r in refs if not r.is_default]
    if defaults:
        positions: list[PositionRow] = await open_positions(s, list(defaults))
        for p in positions:
            out[defaults[p.user_id]].append(
                HoldingRow(p.asset_id, p.quantity, p.cost_basis, p.realized_pnl)
            )
    if tracked:
        rows = await s.execute(
            select(
                PortfolioAsset.portfolio_id,
                PortfolioAsset.asset_id,
                PortfolioAsset.quantity,
                PortfolioAsset.cost_basis,
            )
            .where(PortfolioAsset.portfolio_id.in_(tracked))
            .order_by(PortfolioAsset.portfolio_id, PortfolioAsset.asset_id)
        )
        for r in rows:
            out[r.portfolio_id].append(HoldingRow(r.asset_id, r.quantity, r.cost_basis))
    return out


async def cash_of(
    s: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Decimal]]:
    """Every cash balance (total, held included) of many users, in one query."""
    out: dict[uuid.UUID, dict[str, Decimal]] = {u: {} for u in user_ids}
    if user_ids:
        rows = await s.execute(
            select(LedgerAccount.user_id, LedgerAccount.asset, LedgerAccount.balance).where(
                LedgerAccount.user_id.in_(list(user_ids)),
                LedgerAccount.kind == AccountKind.CASH,
            )
        )
        for r in rows:
            assert r.user_id is not None
            out[r.user_id][r.asset] = r.balance
    return out


async def base_currencies(s: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await s.execute(select(User.id, User.base_currency).where(User.id.in_(list(user_ids))))
    found = {r.id: r.base_currency for r in rows}
    return {u: found.get(u) or "USD" for u in user_ids}


async def assets_by_symbol(s: AsyncSession, symbols: Sequence[str]) -> dict[str, Asset]:
    if not symbols:
        return {}
    return {a.symbol: a for a in await s.scalars(select(Asset).where(Asset.symbol.in_(symbols)))}


async def value_portfolios(
    s: AsyncSession, redis: Redis, prefix: str, refs: Sequence[PortfolioRef]
) -> dict[uuid.UUID, Valuation]:
    """Live valuations of many portfolios: a constant number of queries and Redis calls."""
    holdings = await holdings_of(s, refs)
    users = sorted({r.user_id for r in refs})
    bases = await base_currencies(s, users)
    cash = await cash_of(s, sorted({r.user_id for r in refs if r.is_default}))
    symbols = sorted({h.asset_id for rows in holdings.values() for h in rows})
    assets = await assets_by_symbol(s, symbols)
    quotes = await read_quotes(redis, prefix, symbols)
    rates = await usd_per_unit(redis, prefix)
    return {
        r.id: valuation(
            holdings[r.id],
            assets,
            quotes,
            rates,
            bases[r.user_id],
            cash.get(r.user_id) if r.is_default else None,
        )
        for r in refs
    }


# ---- the service ----


@dataclass(frozen=True, slots=True)
class TransferRequest:
    user_id: str
    asset_id: str
    quantity: str | None
    cost_basis: str | None
    acquired_at: datetime | None = None
    idempotency_key: str | None = None


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

    async def _market_value(
        self, s: AsyncSession, user_id: uuid.UUID, asset: Asset, quantity: Decimal
    ) -> tuple[Decimal, str]:
        """quantity * live price, in the user's base currency (for a flow record)."""
        base = (await base_currencies(s, [user_id]))[user_id]
        quote = price_of(asset, await read_quotes(self.redis, self.prefix, [asset.symbol]))
        rates = await usd_per_unit(self.redis, self.prefix)
        return round_cash(
            convert(quantity * quote.price, asset.currency, base, rates), base, ROUND_HALF_EVEN
        ), base

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
            amount, base = await self._market_value(s, user_id, asset, qty)
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
            amount, base = await self._market_value(s, user_id, asset, row.quantity)
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

    # ---- transfers in (ACATS) ----

    async def record_transfer_in(
        self, request: TransferRequest, recorded_by: uuid.UUID | None = None
    ) -> StockTransfer:
        checks = ProblemCollector()
        user_id = parse_id(request.user_id)
        symbol = clean_symbol(request.asset_id)
        key = (request.idempotency_key or "").strip() or None
        if key is not None and (len(key) > 128 or not key.isprintable()):
            checks.problems.append(
                Problem(ErrorCode.INVALID_INPUT, "The idempotency key: 1 to 128 characters.",
                        "idempotencyKey")
            )  # fmt: skip
        acquired = request.acquired_at or utcnow()
        if acquired.tzinfo is None or acquired > utcnow():
            checks.problems.append(
                Problem(ErrorCode.INVALID_INPUT, "acquiredAt is a past date with an offset.",
                        "acquiredAt")
            )  # fmt: skip
        async with self._sm() as s:
            user = None if user_id is None else await s.get(User, user_id)
            asset = await s.get(Asset, symbol) if symbol else None
        if user is None:
            checks.problems.append(Problem(ErrorCode.NOT_FOUND, "No such user.", "userId"))
        if asset is None:
            checks.problems.append(Problem(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol}.",
                                           "assetId"))  # fmt: skip
        qty = checks.check(
            lambda: validation.parse_decimal(
                request.quantity, field="quantity", code=ErrorCode.INVALID_QUANTITY,
                what="The quantity", max_decimals=18,
            )
        )  # fmt: skip
        if qty is not None and asset is not None and qty % asset.quantity_increment != 0:
            checks.problems.append(
                Problem(
                    ErrorCode.INVALID_QUANTITY,
                    f"{symbol} trades in multiples of {plain(asset.quantity_increment)}.",
                    "quantity",
                )
            )
        places = MINOR_UNITS.get(asset.currency if asset else "USD", 2)
        cost = checks.check(
            lambda: validation.parse_decimal(
                request.cost_basis, field="costBasis", code=ErrorCode.INVALID_AMOUNT,
                what="The cost basis", max_decimals=places, allow_zero=True,
            )
        )  # fmt: skip
        checks.raise_if_any()
        assert user is not None
        assert asset is not None
        assert qty is not None
        assert cost is not None
        fingerprint = hashlib.sha256(
            f"{symbol}|{qty.normalize()}|{cost.normalize()}|{acquired.isoformat()}".encode()
            if request.acquired_at
            else f"{symbol}|{qty.normalize()}|{cost.normalize()}".encode()
        ).hexdigest()
        if key is not None:
            existing = await self._transfer_by_key(user.id, key, fingerprint)
            if existing is not None:
                return existing
        try:
            async with self._sm.begin() as s:
                transfer_id = uuid.uuid4()
                shares = await self.ledger.account_id(s, user.id, AccountKind.SHARES, symbol)
                clearing = await self.ledger.account_id(s, None, AccountKind.TRANSFER, symbol)
                entry = await self.ledger.post(
                    s,
                    "TRANSFER_IN",
                    [Leg(shares, symbol, qty), Leg(clearing, symbol, -qty)],
                    user_id=user.id,
                    reference_id=transfer_id,
                )
                lot = await open_lot(
                    s, user_id=user.id, asset_id=symbol, quantity=qty, cost=cost,
                    acquired_at=acquired, source=LotSource.TRANSFER, source_id=str(transfer_id),
                )  # fmt: skip
                transfer = StockTransfer(
                    id=transfer_id, user_id=user.id, asset_id=symbol, quantity=qty,
                    cost_basis=cost, acquired_at=acquired, idempotency_key=key,
                    request_fingerprint=fingerprint, journal_entry_id=entry, lot_id=lot,
                    recorded_by=recorded_by, created_at=utcnow(),
                )  # fmt: skip
                s.add(transfer)
                await s.flush()  # a racing duplicate key fails here, before anything commits
                portfolio = await self.ensure_default(s, user.id)
                value, base = await self._market_value(s, user.id, asset, qty)
                s.add(
                    PortfolioFlow(
                        portfolio_id=portfolio.id, user_id=user.id, kind="TRANSFER_IN",
                        amount=value, currency=base, reference=str(transfer_id),
                        at=transfer.created_at,
                    )
                )  # fmt: skip
        except IntegrityError as exc:
            if key is None or "uq_stock_transfers_idempotency" not in str(exc.orig):
                raise
            again = await self._transfer_by_key(user.id, key, fingerprint)
            assert again is not None
            return again
        return transfer

    async def _transfer_by_key(
        self, user_id: uuid.UUID, key: str, fingerprint: str
    ) -> StockTransfer | None:
        async with self._sm() as s:
            found = (
                await s.execute(
                    select(StockTransfer).where(
                        StockTransfer.user_id == user_id, StockTransfer.idempotency_key == key
                    )
                )
            ).scalar_one_or_none()
        if found is not None and found.request_fingerprint != fingerprint:
            raise DomainError.one(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was already used for a different transfer.",
                "idempotencyKey",
            )
        return found

    # ---- reads for the API (outside loaders) ----

    async def valuations(self, refs: Sequence[PortfolioRef]) -> dict[uuid.UUID, Valuation]:
        async with self._sm() as s:
            return await value_portfolios(s, self.redis, self.prefix, refs)

    # ---- batched reads for the API's dataloaders (resolvers open no sessions) ----

    async def holdings(self, refs: Sequence[PortfolioRef]) -> dict[uuid.UUID, list[HoldingRow]]:
        async with self._sm() as s:
            return await holdings_of(s, refs)

    async def cash_balances(
        self, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, Decimal]]:
        async with self._sm() as s:
            return await cash_of(s, user_ids)

    async def base_currencies(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        async with self._sm() as s:
            return await base_currencies(s, user_ids)

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
