"""Notifications in real headless Chromium: a price alert created on the asset page fires
while the page is open and the bell's badge updates without a reload, then the inbox, read
marks, an alert from a watchlist row and the notification settings, on a desktop and a 390 px
touch viewport (`frontend-bff/web/e2e/notifications.mjs`, playwright-core driving Debian's
chromium). The session's API serves the web client; the alert evaluator runs in this process
(as `python -m workers.alerts` does) and this test publishes the price tick when the flow asks,
exactly as the market-data feed publishes quotes. Screenshots: var/screenshots/notifications-*.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bourse.settings import Settings
from models.assets import Asset, AssetClass
from models.quotes import QuoteData, write_quotes
from models.services import Services, open_services
from tests.accounts.helpers import PASSWORD, unique
from tests.support.server import Api
from tests.web.flows import SCREENSHOTS, Report, assert_accessible, passed_steps, run_flow
from workers.alerts import Evaluator

TIMEOUT_S = 240


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=3
    ) as opened:
        yield opened


async def _tick(services: Services, symbol: str, price: str) -> None:
    quote = QuoteData(symbol, Decimal(price), None, None, datetime.now(UTC))
    await write_quotes(services.redis, services.settings.redis_prefix, [quote], publish=True)


async def test_an_alert_fires_while_the_page_is_open_on_desktop_and_phone(
    api: Api, services: Services
) -> None:
    symbol = f"W{uuid.uuid4().hex[:5].upper()}"
    async with services.sessionmaker.begin() as s:
        s.add(
            Asset(
                symbol=symbol,
                name=f"Web {symbol}",
                asset_class=AssetClass.EQUITY,
                currency="USD",
                tick_size=Decimal("0.01"),
                quantity_increment=Decimal("0.000001"),
                fractionable=True,
                tradable=True,
                market_calendar="24x7",
                reference_price=Decimal(100),
                collar_bps=500,
                previous_close=Decimal(100),
            )
        )
    await _tick(services, symbol, "100.00")
    emails = {}
    for label in ("desktop", "phone"):
        username, email = unique("nb")
        user = await services.accounts.register(username, email, PASSWORD)
        await services.watchlists.create(user.id, "Alerts", [symbol])
        emails[label] = email

    evaluator = Evaluator(services.alerts, services.notifier)
    stop = asyncio.Event()
    running = asyncio.create_task(
        evaluator.run(services.redis, services.settings.redis_prefix, stop, base_refresh=3600)
    )
    await asyncio.wait_for(evaluator.ready.wait(), 10)

    async def answer(report: Report) -> str:
        assert report["need"] == "tick", report
        await _tick(services, str(report["asset"]), str(report["price"]))
        return "ok"

    try:
        reports = await run_flow(
            "notifications.mjs",
            ["--base-url", api.base_url, "--password", PASSWORD, "--asset", symbol,
             "--desktop", emails["desktop"], "--phone", emails["phone"]],
            prefix="notifications-",
            timeout=TIMEOUT_S,
            answer=answer,
        )  # fmt: skip
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
    steps = passed_steps(reports)
    for label in ("desktop", "phone"):
        for name in (
            "create a price alert on the asset page",
            "an alert already satisfied is refused with the reason",
            "the alert fires while the page is open and the bell updates without a reload",
            "the inbox lists it, and marking it read clears the badge",
            "an alert from a watchlist row",
            "notification settings (security locked on), saved",
            "in Spanish, settings and the inbox fit the screen and the navigation still works",
        ):
            assert f"{label}: {name}" in steps, f"{label}: {name} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("notifications-desktop-*.png"))) >= 5
    assert len(list(SCREENSHOTS.glob("notifications-phone-*.png"))) >= 5
