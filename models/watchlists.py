"""Watchlists: named lists of assets, kept in the order they were added.

- Items carry a `position` (1, 2, …, in order of addition; gaps after removals are fine).
- Adding an asset already on the list, or removing one that is not on it, is an idempotent
  no-op (the list is unchanged, no error): retries and double taps are harmless.
  `createWatchlist` drops repeats in its input too. Unknown symbols are UNKNOWN_ASSET.
- Limits (settings): at most `max_lists` watchlists per user (TOO_MANY_WATCHLISTS) and
  `max_assets` assets per list (WATCHLIST_FULL). Creating is serialised per user by an
  advisory lock and adding per list by its row lock, so concurrent requests cannot overrun them.
- Another user's watchlist does not exist for the caller (NOT_FOUND).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.assets import Asset
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.portfolios import clean_name, clean_symbol, lock_key, not_found, parse_id

LOCK_NAMESPACE = 0x77617463  # "watc"


class Watchlist(Base):
    __tablename__ = "watchlists"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_watchlists_user", "user_id", "created_at"),)


class WatchlistItem(Base):
    __tablename__ = "watchlist_items"

    watchlist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    asset_id: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    user_id: Mapped[uuid.UUID]  # denormalised (partitioning key)
    position: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("watchlist_id", "asset_id", name="pk_watchlist_items"),
        Index("ix_watchlist_items_order", "watchlist_id", "position"),
    )


@dataclass(frozen=True, slots=True)
class ItemView:
    asset_id: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class WatchlistView:
    id: uuid.UUID
    name: str
    created_at: datetime
    items: list[ItemView]

    @property
    def asset_ids(self) -> list[str]:
        return [i.asset_id for i in self.items]


@dataclass(frozen=True, slots=True)
class WatchlistConfig:
    max_lists: int = 20
    max_assets: int = 100


class Watchlists:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], config: WatchlistConfig
    ) -> None:
        self._sm = sessionmaker
        self.config = config

    async def _views(self, s: AsyncSession, lists: list[Watchlist]) -> list[WatchlistView]:
        items: dict[uuid.UUID, list[ItemView]] = {w.id: [] for w in lists}
        if lists:
            rows = await s.execute(
                select(WatchlistItem.watchlist_id, WatchlistItem.asset_id, WatchlistItem.added_at)
                .where(WatchlistItem.watchlist_id.in_(list(items)))
                .order_by(WatchlistItem.watchlist_id, WatchlistItem.position)
            )
            for r in rows:
                items[r.watchlist_id].append(ItemView(r.asset_id, r.added_at))
        return [WatchlistView(w.id, w.name, w.created_at, items[w.id]) for w in lists]

    async def list_for(self, user_id: uuid.UUID) -> list[WatchlistView]:
        async with self._sm() as s:
            lists = list(
                await s.scalars(
                    select(Watchlist)
                    .where(Watchlist.user_id == user_id)
                    .order_by(Watchlist.created_at, Watchlist.id)
                )
            )
            return await self._views(s, lists)

    async def get(self, user_id: uuid.UUID, watchlist_id: str | None) -> WatchlistView | None:
        ident = parse_id(watchlist_id)
        if ident is None:
            return None
        async with self._sm() as s:
            found = await s.get(Watchlist, ident)
            if found is None or found.user_id != user_id:
                return None
            return (await self._views(s, [found]))[0]

    @staticmethod
    async def _known_assets(s: AsyncSession, symbols: list[str]) -> set[str]:
        if not symbols:
            return set()
        return set(await s.scalars(select(Asset.symbol).where(Asset.symbol.in_(symbols))))

    async def _owned_for_update(
        self, s: AsyncSession, user_id: uuid.UUID, watchlist_id: str | None
    ) -> Watchlist:
        ident = parse_id(watchlist_id)
        found = (
            None
            if ident is None
            else (
                await s.execute(select(Watchlist).where(Watchlist.id == ident).with_for_update())
            ).scalar_one_or_none()
        )
        if found is None or found.user_id != user_id:
            raise not_found("watchlist", "watchlistId")
        return found

    async def create(
        self, user_id: uuid.UUID, name: str | None, asset_ids: list[str] | None
    ) -> WatchlistView:
        checks = ProblemCollector()
        clean = checks.check(lambda: clean_name(name))
        symbols = list(dict.fromkeys(clean_symbol(a) for a in asset_ids or []))
        if len(symbols) > self.config.max_assets:
            checks.problems.append(
                Problem(
                    ErrorCode.WATCHLIST_FULL,
                    f"A watchlist holds at most {self.config.max_assets} assets.",
                    "assetIds",
                )
            )
        async with self._sm.begin() as s:
            known = await self._known_assets(s, symbols)
            unknown = [a for a in symbols if a not in known]
            if unknown:
                checks.problems.append(
                    Problem(
                        ErrorCode.UNKNOWN_ASSET,
                        f"Unknown assets: {', '.join(a or '(empty)' for a in unknown[:10])}.",
                        "assetIds",
                    )
                )
            checks.raise_if_any()
            assert clean is not None
            await s.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, lock_key(user_id))))
            count = (
                await s.execute(select(func.count()).where(Watchlist.user_id == user_id))
            ).scalar_one()
            if count >= self.config.max_lists:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_WATCHLISTS,
                    f"At most {self.config.max_lists} watchlists.",
                )
            now = utcnow()
            watchlist = Watchlist(
                id=uuid.uuid4(), user_id=user_id, name=clean, created_at=now, updated_at=now
            )
            s.add(watchlist)
            await s.flush()
            s.add_all(
                WatchlistItem(watchlist_id=watchlist.id, asset_id=a, user_id=user_id,
                              position=i, added_at=now)
                for i, a in enumerate(symbols, start=1)
            )  # fmt: skip
        return WatchlistView(watchlist.id, clean, now, [ItemView(a, now) for a in symbols])

    async def add(
        self, user_id: uuid.UUID, watchlist_id: str | None, asset_id: str | None
    ) -> WatchlistView:
        symbol = clean_symbol(asset_id)
        async with self._sm.begin() as s:
            watchlist = await self._owned_for_update(s, user_id, watchlist_id)
            if not symbol or not await self._known_assets(s, [symbol]):
                raise DomainError.one(
                    ErrorCode.UNKNOWN_ASSET, f"No asset {symbol or '(empty)'}.", "assetId"
                )
            rows = (
                await s.execute(
                    select(WatchlistItem.asset_id, WatchlistItem.position).where(
                        WatchlistItem.watchlist_id == watchlist.id
                    )
                )
            ).all()
            if symbol not in {r.asset_id for r in rows}:
                if len(rows) >= self.config.max_assets:
                    raise DomainError.one(
                        ErrorCode.WATCHLIST_FULL,
                        f"A watchlist holds at most {self.config.max_assets} assets.",
                        "assetId",
                    )
                now = utcnow()
                s.add(
                    WatchlistItem(
                        watchlist_id=watchlist.id, asset_id=symbol, user_id=user_id,
                        position=max((r.position for r in rows), default=0) + 1, added_at=now,
                    )
                )  # fmt: skip
                watchlist.updated_at = now
                await s.flush()
            return (await self._views(s, [watchlist]))[0]

    async def remove(
        self, user_id: uuid.UUID, watchlist_id: str | None, asset_id: str | None
    ) -> WatchlistView:
        symbol = clean_symbol(asset_id)
        async with self._sm.begin() as s:
            watchlist = await self._owned_for_update(s, user_id, watchlist_id)
            item = await s.get(WatchlistItem, (watchlist.id, symbol)) if symbol else None
            if item is None:
                if not symbol or not await self._known_assets(s, [symbol]):
                    raise DomainError.one(
                        ErrorCode.UNKNOWN_ASSET, f"No asset {symbol or '(empty)'}.", "assetId"
                    )
            else:  # removing an asset that is not on the list is a no-op, like adding twice
                await s.delete(item)
                watchlist.updated_at = utcnow()
                await s.flush()
            return (await self._views(s, [watchlist]))[0]

    async def delete(self, user_id: uuid.UUID, watchlist_id: str | None) -> WatchlistView:
        async with self._sm.begin() as s:
            watchlist = await self._owned_for_update(s, user_id, watchlist_id)
            view = (await self._views(s, [watchlist]))[0]
            await s.delete(watchlist)
        return view
