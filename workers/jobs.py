"""The arq worker: which jobs exist and how a worker is built (in `bourse up` or standalone)."""

from __future__ import annotations

import contextlib
from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker

from bourse.settings import Settings
from models.services import arq_queue_name, open_services
from workers.email import send_email
from workers.marketdata.candles import maintain_candles
from workers.marketdata.news import poll_news
from workers.marketdata.summary import roll_previous_close
from workers.recurring import run_recurring_investments
from workers.snapshots import snapshot_portfolios
from workers.withdrawals import complete_withdrawal, sweep_pending_withdrawals

FUNCTIONS: list[Any] = [send_email, complete_withdrawal, snapshot_portfolios]


def build_worker(
    settings: Settings,
    redis_url: str,
    *,
    database_url: str | None = None,
    burst: bool = False,
) -> Worker:
    database_url = database_url or settings.database_url

    async def on_startup(ctx: dict[str, Any]) -> None:
        # Jobs that touch the database (withdrawal settlement) use the platform's services.
        if database_url:
            stack = contextlib.AsyncExitStack()
            ctx["services"] = await stack.enter_async_context(
                open_services(settings, database_url, redis_url, pool_size=5)
            )
            ctx["exit_stack"] = stack

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        stack = ctx.pop("exit_stack", None)
        if isinstance(stack, contextlib.AsyncExitStack):
            await stack.aclose()

    return Worker(
        functions=FUNCTIONS,
        cron_jobs=[
            cron(sweep_pending_withdrawals, second=0),  # every minute, one worker
            cron(run_recurring_investments, second=5),  # every minute: the due runs
            cron(snapshot_portfolios, hour=0, minute=5, second=0, timeout=1800),  # daily, UTC
            # market data: close roll every minute, news every 5 minutes, candles hourly
            cron(roll_previous_close, second=30, run_at_startup=True),
            cron(poll_news, minute=set(range(0, 60, 5)), second=15, run_at_startup=True),
            cron(maintain_candles, minute=7, second=45, run_at_startup=True),
        ],
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=arq_queue_name(settings),
        ctx={"settings": settings},
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=False,  # the host process (bourse up) owns signals
        burst=burst,
        max_jobs=20,
        job_timeout=60,
        keep_result=3600,
    )
