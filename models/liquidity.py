"""The liquidity provider: a platform account quoting two-sided around the reference price.

Which assets it quotes is configuration in PostgreSQL (``liquidity_configs``): an asset has a
liquidity provider only if a row says so (``bourse demo`` configures the demo universe; an asset
made with ``createAsset`` has none until an admin configures it). Null columns take the
``BOURSE_LP_*`` settings.

Its orders go straight to the shards (no outbox: it owns no user money and re-quotes every
fraction of a second anyway) under the user id ``liquidity-provider``; the settlement books its
side of each fill to the platform's LIQUIDITY accounts (cash per currency, inventory per asset),
which have no floor: it may run a short inventory, as a market maker does.

Sessions (``models.calendars.Session``): it quotes in the regular session as configured, in the
pre-market and after-hours sessions ``BOURSE_LP_EXTENDED_SPREAD_FACTOR`` (4) times wider
(``session_quoting``: thinner markets, wider quotes, as market makers do), and not at all while
the market is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.assets import Asset
from models.base import Base
from models.calendars import Session
from models.errors import DomainError, ErrorCode
from models.ledger import AMOUNT


class LiquidityConfig(Base):
    __tablename__ = "liquidity_configs"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.symbol"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    spread_bps: Mapped[int | None] = mapped_column(Integer)
    level_step_bps: Mapped[int | None] = mapped_column(Integer)
    levels: Mapped[int | None] = mapped_column(Integer)
    quote_notional: Mapped[Decimal | None] = mapped_column(AMOUNT)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class Quoting:
    spread_bps: int
    level_step_bps: int
    levels: int
    quote_notional: Decimal


@dataclass(frozen=True, slots=True)
class QuoteLevel:
    side: str  # BUY | SELL
    price: Decimal
    quantity: Decimal


def ladder(asset: Asset, reference: Decimal, q: Quoting) -> list[QuoteLevel]:
    """The bid and ask levels around ``reference``: bids rounded down to the tick, asks up, so
    the spread is never narrower than configured; size ``quote_notional`` per level, rounded
    down to the quantity increment (at least one increment)."""
    tick, step = asset.tick_size, asset.quantity_increment
    out: list[QuoteLevel] = []
    for i in range(q.levels):
        off = (Decimal(q.spread_bps) / 2 + Decimal(q.level_step_bps) * i) / Decimal(10_000)
        bid = (reference * (1 - off) / tick).to_integral_value(rounding=ROUND_DOWN) * tick
        ask = (reference * (1 + off) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        if ask <= bid:
            ask = bid + tick
        size = (q.quote_notional / reference / step).to_integral_value(rounding=ROUND_DOWN) * step
        size = max(size, step)
        if bid > 0:
            out.append(QuoteLevel("BUY", bid, size))
        out.append(QuoteLevel("SELL", ask, size))
    return out


def session_quoting(q: Quoting, session: Session, extended_factor: int) -> Quoting | None:
    """How to quote in ``session``: as configured in the regular one, the spread
    ``extended_factor`` times wider pre-market and after-hours, nothing while closed."""
    if session is Session.CLOSED:
        return None
    if session is Session.REGULAR:
        return q
    return replace(q, spread_bps=q.spread_bps * max(1, extended_factor))


class Liquidity:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], defaults: Quoting) -> None:
        self._sm = sessionmaker
        self.defaults = defaults

    def quoting(self, c: LiquidityConfig) -> Quoting:
        d = self.defaults
        return Quoting(
            spread_bps=c.spread_bps or d.spread_bps,
            level_step_bps=c.level_step_bps or d.level_step_bps,
            levels=c.levels or d.levels,
            quote_notional=c.quote_notional or d.quote_notional,
        )

    async def configure(
        self,
        asset_ids: list[str],
        *,
        enabled: bool = True,
        spread_bps: int | None = None,
        levels: int | None = None,
        quote_notional: Decimal | None = None,
    ) -> list[LiquidityConfig]:
        if spread_bps is not None and not 1 <= spread_bps <= 1000:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Spread: 1-1000 bps.", "spreadBps")
        if levels is not None and not 1 <= levels <= 10:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Levels: 1-10.", "levels")
        if quote_notional is not None and not Decimal(0) < quote_notional <= Decimal(10) ** 9:
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, "The quote size must be positive.", "quoteNotional"
            )
        async with self._sm() as s, s.begin():
            known = set(
                (await s.scalars(select(Asset.symbol).where(Asset.symbol.in_(asset_ids)))).all()
            )
            missing = [a for a in asset_ids if a not in known]
            if missing:
                raise DomainError.one(
                    ErrorCode.UNKNOWN_ASSET, f"Unknown assets: {', '.join(missing)}.", "assetId"
                )
            values = [
                {
                    "asset_id": a,
                    "enabled": enabled,
                    "spread_bps": spread_bps,
                    "levels": levels,
                    "quote_notional": quote_notional,
                    "updated_at": utcnow(),
                }
                for a in asset_ids
            ]
            stmt = insert(LiquidityConfig).values(values)
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[LiquidityConfig.asset_id],
                    set_={
                        k: stmt.excluded[k]
                        for k in ("enabled", "spread_bps", "levels", "quote_notional", "updated_at")
                    },
                )
            )
            return list(
                (
                    await s.scalars(
                        select(LiquidityConfig).where(LiquidityConfig.asset_id.in_(asset_ids))
                    )
                ).all()
            )

    async def enabled(self) -> list[tuple[Asset, Quoting]]:
        async with self._sm() as s:
            rows = await s.execute(
                select(LiquidityConfig, Asset)
                .join(Asset, Asset.symbol == LiquidityConfig.asset_id)
                .where(
                    LiquidityConfig.enabled.is_(True),
                    Asset.tradable.is_(True),
                    Asset.splitting.is_(False),  # a split on its way to the engine
                )
                .order_by(Asset.symbol)
            )
            return [(asset, self.quoting(cfg)) for cfg, asset in rows.tuples()]
