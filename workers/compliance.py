"""Compliance jobs (issue 17): the daily sanctions screening of every customer's legal name,
and the sweep that asks the identity provider again about submissions it never answered."""

from __future__ import annotations

from datetime import timedelta

import structlog

from models.services import Services

log = structlog.get_logger("bourse.compliance")


async def screen_sanctions(ctx: dict[str, object]) -> int:
    """Daily cron: every submitted legal name against the current sanctions list; a new hit
    opens a case that freezes withdrawals (`models.kyc.Kyc.rescreen`; one open case per list
    entry and customer, so running twice opens nothing twice)."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    opened = await services.kyc.rescreen()
    if opened:
        log.warning("sanctions screening opened cases", cases=opened)
    return opened


async def reask_pending_kyc(ctx: dict[str, object]) -> int:
    """Every few minutes: a KYC submission left PENDING longer than
    `kyc_reask_after_seconds` (a crash before the provider answered, the provider down) is
    asked again (`models.kyc.Kyc.reask_pending`); a decision is applied once whatever races."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    after = timedelta(seconds=services.settings.kyc_reask_after_seconds)
    decided = await services.kyc.reask_pending(after)
    if decided:
        log.info("pending KYC submissions decided on a second ask", decided=decided)
    return decided
