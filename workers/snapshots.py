"""End-of-day portfolio valuation snapshots (arq cron job, daily shortly after 00:00 UTC).

Snapshots the day that just ended: every portfolio valued now, one row per (portfolio, day),
upserted, so arq running the job twice (or an operator re-running it) leaves one row per
portfolio and day. See `models.performance`.
"""

from __future__ import annotations

from datetime import date, timedelta

from bourse.clock import utcnow
from models.performance import snapshot_portfolios as take_snapshots
from models.services import Services


async def snapshot_portfolios(ctx: dict[str, object], day: str | None = None) -> int:
    """Snapshot every portfolio for `day` (ISO date; default: yesterday, UTC)."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    which = date.fromisoformat(day) if day else utcnow().date() - timedelta(days=1)
    return await take_snapshots(
        services.sessionmaker, services.redis, services.settings.redis_prefix, which
    )
