"""Document and corporate-action jobs (arq): generate one document, the monthly statements,
trade confirmations, the PENDING sweeper, and corporate actions whose date has come.

Every job is idempotent (arq may run one twice): generation writes the same object key and
turns a row READY only from PENDING; creating documents is an insert on their natural key;
applying a corporate action happens once under its row lock. A generation that raises is
retried by arq (``Retry``, with a growing delay) up to ``MAX_ATTEMPTS``, then the row is FAILED.
"""

from __future__ import annotations

import uuid

import structlog
from arq import Retry

from bourse.clock import utcnow
from models.documents import DocumentStatus, previous_month
from models.documents.service import MAX_ATTEMPTS
from models.services import Services

log = structlog.get_logger("bourse.documents")


def _services(ctx: dict[str, object]) -> Services | None:
    services = ctx.get("services")
    return services if isinstance(services, Services) else None


async def generate_document(ctx: dict[str, object], document_id: str) -> str | None:
    services = _services(ctx)
    if services is None:
        raise RuntimeError("the worker was started without a database (no services)")
    try:
        status = await services.documents.generate(uuid.UUID(document_id))
    except Exception as exc:
        tries = int(str(ctx.get("job_try", 1)))
        log.warning("document generation failed; retrying", document_id=document_id,
                    error=repr(exc), job_try=tries)  # fmt: skip
        if tries >= MAX_ATTEMPTS + 2:
            raise
        raise Retry(defer=2 * tries) from exc
    return status.value if isinstance(status, DocumentStatus) else None


async def monthly_statements(ctx: dict[str, object]) -> int:
    """Statements of last month for every account (idempotent: safe to run every day)."""
    services = _services(ctx)
    if services is None or services.documents_or_none is None:
        return 0
    start, end = previous_month(utcnow().date())
    created = await services.documents.create_monthly(start, end)
    if created:
        log.info("monthly statements queued", period_start=str(start), created=created)
    return created


async def tax_documents(ctx: dict[str, object]) -> int:
    """Last year's 1099s for every account with sales or dividends (idempotent)."""
    services = _services(ctx)
    if services is None or services.documents_or_none is None:
        return 0
    return await services.documents.create_tax_documents(utcnow().year - 1)


async def trade_confirmations(ctx: dict[str, object]) -> int:
    services = _services(ctx)
    if services is None or services.documents_or_none is None:
        return 0
    return await services.documents.create_confirmations(
        services.settings.confirmation_lookback_hours
    )


async def sweep_pending_documents(ctx: dict[str, object]) -> int:
    """Re-enqueue documents left PENDING (a worker died mid-generation, Redis lost the job)."""
    services = _services(ctx)
    if services is None or services.documents_or_none is None:
        return 0
    return await services.documents.enqueue_pending()


async def apply_corporate_actions(ctx: dict[str, object]) -> int:
    services = _services(ctx)
    if services is None:
        return 0
    applied = 0
    for action_id in await services.corporate_actions.due():
        try:
            await services.corporate_actions.apply_if_due(action_id)
            applied += 1
        except Exception:
            log.exception("corporate action not applied", action_id=str(action_id))
    return applied
