"""The whole platform for browser tests and the web budgets: API, a matching shard, settlement,
the liquidity provider and the market-data feed as processes (as `bourse up` runs them), the job
worker (documents, withdrawals) in this process, with the demo universe and sample news."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import update

from bourse.app.demo.assets import new_assets
from bourse.settings import Settings
from models.liquidity import LiquidityConfig
from models.services import open_services
from tests.support.stack import Stack
from workers.jobs import build_worker
from workers.marketdata.news import SampleNewsSource, ingest


@asynccontextmanager
async def web_platform(settings: Settings, ticks_per_second: float = 4) -> AsyncIterator[Stack]:
    stack = Stack(settings, shards=1, feed=True)
    stack.env["BOURSE_MARKETDATA_TICKS_PER_SECOND"] = str(ticks_per_second)
    s = stack.settings
    assert s.database_url
    assert s.redis_url
    async with open_services(s, s.database_url, s.redis_url, pool_size=2) as services:
        assets = await services.assets.upsert_many(new_assets())
        await services.liquidity.configure([a.symbol for a in assets])
        await ingest(services.news, SampleNewsSource())
    worker = build_worker(s, s.redis_url, database_url=s.database_url)
    jobs = asyncio.create_task(worker.async_run())
    try:
        await stack.start_all()
        yield stack
    finally:
        await stack.stop_all()
        await worker.close()
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jobs
        # Stop quoting these assets: a later module's stack runs other shards.
        async with (
            open_services(s, s.database_url, s.redis_url, pool_size=1) as services,
            services.sessionmaker.begin() as session,
        ):
            await session.execute(update(LiquidityConfig).values(enabled=False))
