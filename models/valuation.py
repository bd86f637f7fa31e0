"""Valuation of portfolios: holdings and cash at live prices, in the user's base currency.

- `value_holding`: the live price (Redis quote, else the asset's reference price) * quantity in
  the asset's currency, rounded to its minor unit (half even); converted to the user's base
  currency with the current FX table and rounded there. `total_value` is the sum of the rounded
  holdings in the base currency plus, for the default portfolio, every cash balance (total,
  held included) converted the same way, so the numbers a client sees add up.
- Batched reads (`holdings_of`, `cash_of`, `value_portfolios`) serve the dataloader and the
  snapshot job: one query per kind of row for any number of portfolios, in one session. The
  assets are read as `AssetPricing` (the five columns a valuation uses), not as ORM rows:
  building 200 `Asset` instances was the largest single cost of a 200-holding portfolio.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from redis.asyncio import Redis
from sqlalchemy import ARRAY, String, any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.money import plain, round_cash
from models.assets import Asset
from models.ledger import ZERO, AccountKind, LedgerAccount
from models.portfolio_tables import (
    Portfolio,
    PortfolioAsset,
)
from models.positions import PositionRow, open_positions
from models.quotes import QuoteData, convert, price_of, read_quotes, usd_per_unit
from models.users import User

# ---- valuation ----


_AVERAGE_COST_STEP = Decimal("1e-8")


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


@dataclass(frozen=True, slots=True)
class AssetPricing:
    """What valuing a holding reads of its asset (`price_of`'s fallback and the currency)."""

    symbol: str
    currency: str
    reference_price: Decimal
    tick_size: Decimal
    updated_at: datetime


def value_holding(
    row: HoldingRow, asset: AssetPricing, quote: QuoteData, rates: dict[str, Decimal], base: str
) -> HoldingValue:
    currency = asset.currency
    current = row.quantity * quote.price
    cost = round_cash(row.cost_basis, currency, ROUND_HALF_EVEN)
    value = round_cash(current, currency, ROUND_HALF_EVEN)
    return HoldingValue(
        asset_id=row.asset_id,
        currency=currency,
        quantity=plain(row.quantity),
        average_cost=plain((row.cost_basis / row.quantity).quantize(_AVERAGE_COST_STEP)),
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
    assets: dict[str, AssetPricing],
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


async def pricing_of(s: AsyncSession, symbols: Sequence[str]) -> dict[str, AssetPricing]:
    if not symbols:
        return {}
    # One array parameter, not IN (...) with a bind per symbol: SQLAlchemy renders an
    # expanding IN anew for every call, 5% of a 200-holding portfolio's CPU.
    rows = await s.execute(
        select(
            Asset.symbol, Asset.currency, Asset.reference_price, Asset.tick_size, Asset.updated_at
        ).where(Asset.symbol == any_(bindparam("symbols", list(symbols), type_=ARRAY(String))))
    )
    return {r[0]: AssetPricing(*r) for r in rows}


async def value_portfolios(
    s: AsyncSession, redis: Redis, prefix: str, refs: Sequence[PortfolioRef]
) -> dict[uuid.UUID, Valuation]:
    """Live valuations of many portfolios: a constant number of queries and Redis calls."""
    holdings = await holdings_of(s, refs)
    users = sorted({r.user_id for r in refs})
    bases = await base_currencies(s, users)
    cash = await cash_of(s, sorted({r.user_id for r in refs if r.is_default}))
    symbols = sorted({h.asset_id for rows in holdings.values() for h in rows})
    assets = await pricing_of(s, symbols)
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


async def market_value(
    s: AsyncSession,
    redis: Redis,
    prefix: str,
    user_id: uuid.UUID,
    asset: Asset,
    quantity: Decimal,
) -> tuple[Decimal, str]:
    """quantity * live price, in the user's base currency (for a flow record)."""
    base = (await base_currencies(s, [user_id]))[user_id]
    quote = price_of(asset, await read_quotes(redis, prefix, [asset.symbol]))
    rates = await usd_per_unit(redis, prefix)
    return round_cash(
        convert(quantity * quote.price, asset.currency, base, rates), base, ROUND_HALF_EVEN
    ), base
