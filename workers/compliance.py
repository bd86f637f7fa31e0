"""Compliance jobs: the daily sanctions screening of every customer's legal name (issue 17)."""

from __future__ import annotations

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
