"""Rolling ``assets.previous_close`` at each session close (marketSummary measures from it).

``roll_previous_close`` (arq cron, every minute) looks at each asset's calendar: the most
recent close at or before now (XNYS: the session close, 16:00 or 13:00 New York; 24x7: 00:00
UTC). When the asset's ``previous_close_at`` is older, it stores the price at that close: the
close of the last one-minute candle before it, else the live price (quote or reference). The
update is conditional on ``previous_close_at``, so running twice, or on two workers, rolls once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from bourse.clock import utcnow
from models.assets import Asset
from models.calendars import calendar
from models.quotes import price_of, read_quotes
from models.services import Services


async def roll_closes(services: Services, now: datetime) -> list[str]:
    """Roll every asset whose last close is newer than its stored one; the symbols rolled."""
    due: dict[datetime, list[Asset]] = {}
    for a in await services.assets.all():
        close = calendar(a.market_calendar).previous_close(now)
        if a.previous_close_at is None or a.previous_close_at < close:
            due.setdefault(close, []).append(a)
    rolled: list[str] = []
    for close, assets in sorted(due.items()):
        symbols = [a.symbol for a in assets]
        at_close = await services.candles.close_at(symbols, close)
        quotes = await read_quotes(services.redis, services.settings.redis_prefix, symbols)
        async with services.sessionmaker() as s, s.begin():
            for a in assets:
                price = at_close.get(a.symbol) or price_of(a, quotes).price
                result = await s.execute(
                    update(Asset)
                    .where(Asset.symbol == a.symbol)
                    .where(Asset.previous_close_at.is_(None) | (Asset.previous_close_at < close))
                    .values(previous_close=price, previous_close_at=close)
                )
                if getattr(result, "rowcount", 0):
                    rolled.append(a.symbol)
    return rolled


async def roll_previous_close(ctx: dict[str, Any]) -> int:
    """arq cron job (every minute)."""
    services = ctx.get("services")
    if not isinstance(services, Services):
        return 0
    return len(await roll_closes(services, utcnow()))
