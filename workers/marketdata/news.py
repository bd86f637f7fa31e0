"""News adapters and the job that polls them into ``news_items``.

A source implements ``models.news.NewsSource`` (``name``, ``fetch()``: an async iterator of
``NewsItemData``). ``SampleNewsSource`` serves ``data/sample_news.json``: fictional headlines
the project wrote for the demo universe (clearly marked as samples, ``news.example.com`` URLs);
each item is stamped ``minutes_ago`` before the first load, and ids are stable, so loading
again stores nothing twice. A real vendor adapter implements the same protocol; the job
(``poll_news``, every five minutes) ingests whatever the source yields, idempotently by id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bourse.clock import utcnow
from models.news import NewsItemData, NewsSource, NewsStore

SAMPLE_NEWS_PATH = Path(__file__).resolve().parent / "data" / "sample_news.json"


class SampleNewsSource:
    name = "sample"

    def __init__(self, path: Path = SAMPLE_NEWS_PATH, now: datetime | None = None) -> None:
        self.path = path
        self.now = now

    async def fetch(self) -> AsyncIterator[NewsItemData]:
        now = self.now or utcnow()
        raw: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        for item in raw["items"]:
            yield NewsItemData(
                id=f"{self.name}:{item['id']}",
                asset_ids=tuple(item["asset_ids"]),
                headline=item["headline"],
                summary=item["summary"],
                source=item["source"],
                url=item["url"],
                published_at=now - timedelta(minutes=int(item["minutes_ago"])),
            )


async def ingest(store: NewsStore, source: NewsSource) -> int:
    """Store what ``source`` has; returns how many items were new."""
    items = [item async for item in source.fetch()]
    return await store.ingest(items)


async def poll_news(ctx: dict[str, Any]) -> int:
    """arq cron job: ingest the configured news source (the sample feed today)."""
    services = ctx.get("services")
    if services is None:
        return 0
    return await ingest(services.news, SampleNewsSource())
