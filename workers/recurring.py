"""Recurring investments: every minute, place the runs that are due (arq cron job).

Exactly once per period however many workers run it (``models.recurring``: plan rows locked
with SKIP LOCKED, one client order id per period). The job needs the database (the worker's
services, as for withdrawals).
"""

from __future__ import annotations

import structlog

from models.services import Services

log = structlog.get_logger("bourse.recurring")


async def run_recurring_investments(ctx: dict[str, object]) -> int:
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    settled = await services.recurring.run_due()
    if settled:
        log.info("recurring investments run", runs=settled)
    return settled
