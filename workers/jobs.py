"""The arq worker: which jobs exist and how a worker is built (in `bourse up` or standalone)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker

from bourse.process import service_main
from bourse.redis_client import jobs_url
from bourse.settings import Settings
from models.services import arq_queue_name, open_services
from workers.compliance import reask_pending_kyc, screen_sanctions
from workers.documents import (
    apply_corporate_actions,
    generate_document,
    monthly_statements,
    sweep_pending_documents,
    tax_documents,
    trade_confirmations,
)
from workers.email import password_reset_email, send_email
from workers.marketdata.candles import maintain_candles
from workers.marketdata.news import poll_news
from workers.marketdata.summary import roll_previous_close
from workers.notifications import (
    deliver_notification,
    dispatch_notification,
    sweep_notifications,
)
from workers.recurring import run_recurring_investments
from workers.snapshots import snapshot_portfolios
from workers.webhooks import prune_webhook_events, run_sender
from workers.withdrawals import complete_withdrawal, sweep_pending_withdrawals

FUNCTIONS: list[Any] = [
    send_email,
    password_reset_email,
    complete_withdrawal,
    screen_sanctions,
    snapshot_portfolios,
    generate_document,
    dispatch_notification,
    deliver_notification,
]


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
            if settings.s3_bucket:
                await ctx["services"].documents.store.ensure_bucket()
            # Partner webhooks: a sending loop beside the jobs (workers/webhooks.py).
            stop = asyncio.Event()
            ctx["webhooks_stop"] = stop
            ctx["webhooks"] = asyncio.create_task(
                run_sender(ctx["services"], stop), name="webhooks"
            )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        stop = ctx.pop("webhooks_stop", None)
        sender = ctx.pop("webhooks", None)
        if isinstance(stop, asyncio.Event) and isinstance(sender, asyncio.Task):
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(sender, 15)
        stack = ctx.pop("exit_stack", None)
        if isinstance(stack, contextlib.AsyncExitStack):
            await stack.aclose()

    return Worker(
        functions=FUNCTIONS,
        cron_jobs=[
            cron(sweep_pending_withdrawals, second=0),  # every minute, one worker
            cron(screen_sanctions, hour=1, minute=30, second=0, timeout=3600),  # daily, UTC
            cron(reask_pending_kyc, minute=set(range(2, 60, 5)), second=25),  # every 5 minutes
            cron(run_recurring_investments, second=5),  # every minute: the due runs
            cron(snapshot_portfolios, hour=0, minute=5, second=0, timeout=1800),  # daily, UTC
            # market data: close roll every minute, news every 5 minutes, candles hourly
            cron(roll_previous_close, second=30, run_at_startup=True),
            cron(poll_news, minute=set(range(0, 60, 5)), second=15, run_at_startup=True),
            cron(maintain_candles, minute=7, second=45, run_at_startup=True),
            # documents: confirmations every minute (within a minute of the last fill), the
            # PENDING sweeper, last month's statements daily (idempotent), corporate actions due
            cron(trade_confirmations, second={5, 35}),
            cron(sweep_pending_documents, second=50),
            cron(monthly_statements, hour=2, minute=0, second=20, timeout=1800),
            cron(tax_documents, month=1, day=15, hour=3, minute=0, second=0, timeout=3600),
            cron(apply_corporate_actions, minute=1, second=10, run_at_startup=True),
            # notifications whose producer died before planning their delivery
            cron(sweep_notifications, second=40),
            # partner webhooks: events (and their delivery log) past the 30-day retention
            cron(prune_webhook_events, hour=4, minute=15, second=0, timeout=600),
        ],
        # arq cannot use a cluster: BOURSE_JOBS_REDIS_URL then (bourse/redis_client.py).
        redis_settings=RedisSettings.from_dsn(jobs_url(redis_url, settings.jobs_redis_url)),
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


async def _serve(
    settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
) -> None:
    """One more job worker until SIGINT / SIGTERM (`python -m workers.jobs`; `bourse up` runs
    its own in-process): arq workers scale horizontally, every job being idempotent."""
    worker = build_worker(settings, redis_url, database_url=database_url)
    running = asyncio.ensure_future(worker.async_run())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


def main() -> int:
    return service_main(_serve)


if __name__ == "__main__":
    sys.exit(main())
