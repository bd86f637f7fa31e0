"""Withdrawal settlement: after the rail's delay, pay out and settle (arq job).

arq may run a job twice; `Funds.complete_withdrawal` settles under a row lock and only from
PENDING, so a second run changes nothing. The job needs the database: the worker opens the
platform's services on startup (`workers.jobs.build_worker` with a database URL).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog

from models.services import Services

log = structlog.get_logger("bourse.withdrawals")


async def complete_withdrawal(ctx: dict[str, object], transaction_id: str) -> str | None:
    services = ctx.get("services")
    if not isinstance(services, Services):
        raise RuntimeError("the worker was started without a database (no services)")
    txn = await services.funds.complete_withdrawal(uuid.UUID(transaction_id))
    if txn is None:
        log.warning("withdrawal not found", transaction_id=transaction_id)
        return None
    log.info("withdrawal settled", transaction_id=transaction_id, status=txn.status.value)
    return txn.status.value


async def sweep_pending_withdrawals(ctx: dict[str, object]) -> int:
    """Cron safety net: settle withdrawals whose job was never enqueued (Redis down at request
    time) or died. Settling is idempotent, so racing the original job is harmless."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    grace = timedelta(seconds=services.settings.sandbox_withdrawal_delay_seconds + 60)
    pending = await services.funds.pending_withdrawals(older_than=grace)
    for transaction_id in pending:
        await services.funds.complete_withdrawal(transaction_id)
    if pending:
        log.info("swept pending withdrawals", count=len(pending))
    return len(pending)
