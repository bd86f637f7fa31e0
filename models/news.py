"""Market news: items from a news adapter, stored so every API node reads the same list.

A ``NewsSource`` (``workers.marketdata.news``: the bundled sample feed today, a vendor later)
yields ``NewsItemData``; ``NewsStore.ingest`` upserts them by id (the source's own id, prefixed
with the source), so polling a source again changes nothing. ``latest`` reads the newest items,
optionally those mentioning one asset (GIN index on ``asset_ids``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import DateTime, Index, String, Text, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

MAX_NEWS = 50


class NewsItem(Base):
    __tablename__ = "news_items"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    asset_ids: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    headline: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_news_items_published_at", "published_at"),
        Index("ix_news_items_asset_ids", "asset_ids", postgresql_using="gin"),
    )


@dataclass(frozen=True, slots=True)
class NewsItemData:
    id: str
    asset_ids: tuple[str, ...]
    headline: str
    summary: str
    source: str
    url: str
    published_at: datetime


class NewsSource(Protocol):
    """A news adapter: yields the items it currently has (newest first or any order)."""

    name: str

    def fetch(self) -> AsyncIterator[NewsItemData]: ...


class NewsStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._reads = reads or sessionmaker  # `latest` may lag (models/replicas.py)

    async def ingest(self, items: Sequence[NewsItemData]) -> int:
        """Store items not seen before (by id); returns how many were new."""
        if not items:
            return 0
        rows = [
            {
                "id": i.id,
                "asset_ids": sorted(set(i.asset_ids)),
                "headline": i.headline,
                "summary": i.summary,
                "source": i.source,
                "url": i.url,
                "published_at": i.published_at,
            }
            for i in items
        ]
        async with self._sessionmaker() as s, s.begin():
            result = await s.execute(
                insert(NewsItem).values(rows).on_conflict_do_nothing().returning(NewsItem.id)
            )
            return len(result.all())

    async def latest(self, asset_id: str | None, first: int) -> list[NewsItem]:
        limit = max(0, min(first, MAX_NEWS))
        if limit == 0:
            return []
        stmt = select(NewsItem).order_by(NewsItem.published_at.desc(), NewsItem.id).limit(limit)
        if asset_id is not None:
            stmt = stmt.where(NewsItem.asset_ids.contains([asset_id]))
        async with self._reads() as s:
            return list((await s.scalars(stmt)).all())
