"""Assets: the reference data of everything that trades (symbol, precision, calendar, price).

An asset's id is its symbol (API.md section 1). Its trading precision reaches the matching shard
only as an ``ADD_ASSET`` command (see ``models.exchange``), sent whenever the asset is created or
changed; the shard ignores a repeat, so sending again is always safe.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    Integer,
    Numeric,
    String,
    false,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.money import SUPPORTED_CURRENCIES
from models import pagination, validation
from models.base import Base, Timestamps
from models.calendars import ALWAYS_OPEN, CALENDARS, US_EQUITY
from models.constraints import violated_constraint
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector

PRICE = Numeric(38, 18)
SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,15}\Z")  # .match() anchors the start
FRACTIONAL_INCREMENT = Decimal("0.000001")  # fractional shares trade in millionths
MAX_DECIMALS = 8


class AssetClass(enum.StrEnum):
    EQUITY = "EQUITY"
    ETF = "ETF"
    CRYPTO = "CRYPTO"


def default_calendar(asset_class: AssetClass) -> str:
    return ALWAYS_OPEN if asset_class is AssetClass.CRYPTO else US_EQUITY


class Asset(Timestamps, Base):
    __tablename__ = "assets"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    asset_class: Mapped[AssetClass] = mapped_column(
        Enum(AssetClass, name="asset_class", native_enum=True)
    )
    currency: Mapped[str] = mapped_column(String(3))
    tick_size: Mapped[Decimal] = mapped_column(PRICE)
    quantity_increment: Mapped[Decimal] = mapped_column(PRICE)
    fractionable: Mapped[bool] = mapped_column(Boolean)
    tradable: Mapped[bool] = mapped_column(Boolean)
    # A stock split committed in PostgreSQL whose SPLIT the engine has not applied yet (the
    # settlement clears it on SPLIT_APPLIED): no new order or replace meanwhile, so nothing
    # planned on post-split prices reaches a pre-split book (models/corporate_actions.py).
    splitting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How many stock splits the asset has had (bumped in each split's transaction; its SPLIT
    # command carries the new count). Orders and replaces stamp it on their command, read
    # under the row's FOR KEY SHARE lock: the engine adjusts a command stamped before a split
    # that reaches it after the split (matching/core/split.py ``catch_up``).
    split_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    market_calendar: Mapped[str] = mapped_column(String(16))
    reference_price: Mapped[Decimal] = mapped_column(PRICE)
    # The last close (the reference price at the previous session's close): marketSummary's
    # percentage change is measured from it.
    previous_close: Mapped[Decimal | None] = mapped_column(PRICE)
    # The session close ``previous_close`` was taken at (workers.marketdata.summary rolls it).
    previous_close_at: Mapped[datetime | None] = mapped_column()
    collar_bps: Mapped[int] = mapped_column(Integer, default=500)
    # Annualised volatility (0.25 = 25%) as reference data; the synthetic market-data provider
    # walks the price with it. Null: the provider's default.
    volatility: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))

    __table_args__ = (
        CheckConstraint("tick_size > 0", name="tick_positive"),
        CheckConstraint("quantity_increment > 0", name="increment_positive"),
        CheckConstraint("reference_price > 0", name="reference_positive"),
        CheckConstraint("collar_bps > 0 AND collar_bps <= 5000", name="collar_range"),
    )

    @property
    def id(self) -> str:
        return self.symbol


@dataclass(frozen=True, slots=True)
class NewAsset:
    symbol: str
    name: str
    asset_class: AssetClass
    currency: str
    tick_size: str | Decimal
    fractionable: bool
    tradable: bool
    reference_price: str | Decimal
    market_calendar: str | None = None
    collar_bps: int = 500
    volatility: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AssetPage:
    items: Sequence[Asset]
    has_next_page: bool


def encode_cursor(asset: Asset) -> str:
    return pagination.encode_cursor(asset.symbol)


def decode_cursor(cursor: str) -> str:
    (symbol,) = pagination.cursor_parts(cursor, 1)
    if not SYMBOL_RE.match(symbol):
        raise DomainError.one(ErrorCode.INVALID_INPUT, "Not a valid cursor.", "after")
    return symbol


def validate(new: NewAsset) -> NewAsset:
    """The asset as it will be stored, or a DomainError listing every problem."""
    checks = ProblemCollector()
    symbol = new.symbol.strip().upper()
    if not SYMBOL_RE.match(symbol):
        checks.problems.append(
            Problem(
                ErrorCode.INVALID_SYMBOL,
                "A symbol is 1-16 characters: capital letters, digits, '.' and '-'.",
                "symbol",
            )
        )
    name = new.name.strip()
    if not 1 <= len(name) <= 128 or not name.isprintable():
        checks.problems.append(
            Problem(ErrorCode.INVALID_INPUT, "A name is 1-128 printable characters.", "name")
        )
    currency = new.currency.strip().upper()
    if currency not in SUPPORTED_CURRENCIES:
        checks.problems.append(
            Problem(
                ErrorCode.UNSUPPORTED_CURRENCY,
                f"Supported currencies: {', '.join(sorted(SUPPORTED_CURRENCIES))}.",
                "currency",
            )
        )
    tick = checks.check(
        lambda: validation.parse_decimal(
            new.tick_size,
            field="tickSize",
            code=ErrorCode.INVALID_TICK_SIZE,
            what="The tick size",
            max_decimals=MAX_DECIMALS,
        )
    )
    price = checks.check(
        lambda: validation.parse_decimal(
            new.reference_price,
            field="referencePrice",
            code=ErrorCode.INVALID_PRICE,
            what="The reference price",
            max_decimals=MAX_DECIMALS,
        )
    )
    calendar = new.market_calendar or default_calendar(new.asset_class)
    if calendar not in CALENDARS:
        checks.problems.append(
            Problem(
                ErrorCode.INVALID_CALENDAR,
                f"Known market calendars: {', '.join(CALENDARS)}.",
                "marketCalendar",
            )
        )
    if not 0 < new.collar_bps <= 5000:
        checks.problems.append(
            Problem(ErrorCode.INVALID_INPUT, "The collar is 1-5000 basis points.", "collarBps")
        )
    checks.raise_if_any()
    assert tick is not None
    assert price is not None
    return NewAsset(
        symbol=symbol,
        name=name,
        asset_class=new.asset_class,
        currency=currency,
        tick_size=tick,
        fractionable=new.fractionable,
        tradable=new.tradable,
        reference_price=price,
        market_calendar=calendar,
        collar_bps=new.collar_bps,
        volatility=new.volatility,
    )


def _row(new: NewAsset) -> dict[str, object]:
    return {
        "symbol": new.symbol,
        "name": new.name,
        "asset_class": new.asset_class,
        "currency": new.currency,
        "tick_size": new.tick_size,
        "quantity_increment": FRACTIONAL_INCREMENT if new.fractionable else Decimal(1),
        "fractionable": new.fractionable,
        "tradable": new.tradable,
        "market_calendar": new.market_calendar,
        "reference_price": new.reference_price,
        # A new asset's change is measured from its listing price until the first close.
        "previous_close": new.reference_price,
        "collar_bps": new.collar_bps,
        "volatility": new.volatility,
    }


# Called after an asset is stored (or re-stored), to configure its book on the matching shard.
ConfigureMarket = Callable[[Sequence[Asset]], Awaitable[None]]


class Assets:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], configure_market: ConfigureMarket
    ) -> None:
        self._sessionmaker = sessionmaker
        self._configure_market = configure_market

    async def create(self, new: NewAsset) -> Asset:
        valid = validate(new)
        async with self._sessionmaker() as s, s.begin():
            s.add(asset := Asset(**_row(valid)))
            try:
                await s.flush()
            except IntegrityError as exc:
                if violated_constraint(exc) != "pk_assets":
                    raise
                raise DomainError.one(
                    ErrorCode.ASSET_EXISTS, f"{valid.symbol} already exists.", "symbol"
                ) from None
        await self._configure_market([asset])
        return asset

    async def upsert_many(self, assets: Sequence[NewAsset]) -> list[Asset]:
        """Create or refresh reference data (demo loader); reference prices already set are
        kept, since the live feed owns them once it runs."""
        rows = [_row(validate(a)) for a in assets]
        async with self._sessionmaker() as s, s.begin():
            stmt = insert(Asset).values(rows)
            keep = {"reference_price", "previous_close", "symbol"}
            update: dict[str, Any] = {k: stmt.excluded[k] for k in rows[0] if k not in keep}
            # Rows stored before previous_close was filled get it once; then the roll owns it.
            update["previous_close"] = func.coalesce(
                Asset.previous_close, stmt.excluded.previous_close
            )
            await s.execute(stmt.on_conflict_do_update(index_elements=[Asset.symbol], set_=update))
            stored = list(
                (
                    await s.scalars(
                        select(Asset).where(Asset.symbol.in_([r["symbol"] for r in rows]))
                    )
                ).all()
            )
        await self._configure_market(stored)
        return stored

    async def get(self, symbol: str) -> Asset | None:
        wanted = symbol.strip().upper()
        if not SYMBOL_RE.match(wanted):
            return None  # cannot exist (and a NUL byte would be a database error)
        async with self._sessionmaker() as s:
            return await s.get(Asset, wanted)

    async def get_many(self, symbols: Sequence[str]) -> dict[str, Asset]:
        wanted = [x for x in symbols if SYMBOL_RE.match(x)]
        if not wanted:
            return {}
        async with self._sessionmaker() as s:
            found = await s.scalars(select(Asset).where(Asset.symbol.in_(wanted)))
            return {a.symbol: a for a in found}

    async def all(self) -> list[Asset]:
        async with self._sessionmaker() as s:
            return list((await s.scalars(select(Asset).order_by(Asset.symbol))).all())

    async def search(self, search: str | None, first: int | None, after: str | None) -> AssetPage:
        limit = max(1, min(first or 20, 100))
        stmt = select(Asset).order_by(Asset.symbol).limit(limit + 1)
        if search and search.strip():
            # NUL cannot be in PostgreSQL text: dropped rather than sent (a database error).
            term = (
                search.replace("\x00", "")
                .strip()[:64]
                .replace("\\", "\\\\")
                .replace("%", r"\%")
                .replace("_", r"\_")
            )
            stmt = stmt.where(or_(Asset.symbol.ilike(f"{term}%"), Asset.name.ilike(f"%{term}%")))
        if after:
            stmt = stmt.where(Asset.symbol > decode_cursor(after))
        async with self._sessionmaker() as s:
            rows = list((await s.scalars(stmt)).all())
        return AssetPage(items=rows[:limit], has_next_page=len(rows) > limit)

    async def set_reference_prices(
        self, prices: dict[str, Decimal], *, at: datetime | None = None
    ) -> None:
        """Store the feed's latest prices (the durable fallback when Redis has no quote)."""
        if not prices:
            return
        async with self._sessionmaker() as s, s.begin():
            for symbol, price in sorted(prices.items()):
                asset = await s.get(Asset, symbol)
                if asset is not None:
                    asset.reference_price = price
