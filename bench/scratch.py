"""A scratch database and Redis key prefix for a benchmark run.

Servers: the machine's (DATABASE_URL / REDIS_URL) when set, else embedded ones under
var/bench; a new database (migrated) and key prefix per run, both removed at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bourse.migrate import upgrade_async
from bourse.runtime import service_urls
from bourse.settings import Settings
from tests.support.databases import create_database, drop_database, with_database


@asynccontextmanager
async def scratch_settings(tag: str = "bench", **overrides: Any) -> AsyncIterator[Settings]:
    """Settings bound to a fresh, migrated database and a fresh Redis key prefix."""
    base = Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        var_dir=Path("var/bench"),
    )
    with service_urls(base) as urls:
        name = f"bourse_{tag}_{uuid.uuid4().hex[:8]}"
        prefix = f"{tag}-{uuid.uuid4().hex[:8]}:"
        await create_database(urls.database_url, name)
        url = with_database(urls.database_url, name)
        try:
            await upgrade_async(url)
            yield Settings(
                **{
                    "database_url": url,
                    "redis_url": urls.redis_url,
                    "redis_prefix": prefix,
                    "env": "test",
                    "var_dir": Path("var/bench"),
                    "secret_key": "bench-secret-key",
                    **overrides,
                }
            )
        finally:
            await drop_database(urls.database_url, name)
            redis = Redis.from_url(urls.redis_url)
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
