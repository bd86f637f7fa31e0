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
async def scratch_settings(
    tag: str = "bench", *, s3: bool = False, **overrides: Any
) -> AsyncIterator[Settings]:
    """Settings bound to a fresh, migrated database and a fresh Redis key prefix (and, with
    ``s3``, a fresh bucket on the configured or embedded S3 store, deleted at the end)."""
    base = Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        var_dir=Path("var/bench"),
    )
    with service_urls(base, s3=s3) as urls:
        name = f"bourse_{tag}_{uuid.uuid4().hex[:8]}"
        prefix = f"{tag}-{uuid.uuid4().hex[:8]}:"
        await create_database(urls.database_url, name)
        url = with_database(urls.database_url, name)
        bucket = f"bourse-{tag}-{uuid.uuid4().hex[:8]}"
        store_settings = urls.apply(base.model_copy(update={"s3_bucket": bucket}))
        store = None
        try:
            await upgrade_async(url)
            if s3:
                from models.storage import ObjectStore

                store = ObjectStore(store_settings)
                await store.ensure_bucket()
                overrides = {
                    "s3_endpoint_url": store_settings.s3_endpoint_url,
                    "s3_bucket": bucket,
                    "s3_access_key_id": store_settings.s3_access_key_id,
                    "s3_secret_access_key": store_settings.s3_secret_access_key,
                    **overrides,
                }
            yield Settings(
                **{
                    "database_url": url,
                    "redis_url": urls.redis_url,
                    "redis_prefix": prefix,
                    "env": "test",
                    "var_dir": Path("var/bench"),
                    "secret_key": "bench-secret-key",
                    # A load generator is one address: only the per-user limit applies.
                    "mutations_per_minute_per_ip": 0,
                    **overrides,
                }
            )
        finally:
            if store is not None:
                await store.delete_everything()
            await drop_database(urls.database_url, name)
            redis = Redis.from_url(urls.redis_url)
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
