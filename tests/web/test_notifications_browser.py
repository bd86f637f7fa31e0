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
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bourse.settings import Settings
from models.assets import Asset, AssetClass
from models.quotes import QuoteData, write_quotes
from models.services import Services, open_services
from tests.accounts.helpers import PASSWORD, unique
from tests.support.server import Api
from workers.alerts import Evaluator

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "frontend-bff" / "web"
SCREENSHOTS = ROOT / "var" / "screenshots"
TIMEOUT_S = 240


def _need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: {hint}")
    return path


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
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    node = _need("node", "the web client's browser tests need Node.js 20+")
    chromium = _need(
        "chromium", "scripts/test installs Debian's chromium (apt-get install chromium)"
    )
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("notifications-*.png"):
        old.unlink()
    proc = await asyncio.create_subprocess_exec(
        node,
        "e2e/notifications.mjs",
        "--base-url",
        api.base_url,
        "--out",
        str(SCREENSHOTS),
        "--password",
        PASSWORD,
        "--asset",
        symbol,
        "--desktop",
        emails["desktop"],
        "--phone",
        emails["phone"],
        cwd=WEB,
        env={"PATH": "/usr/bin:/bin", "CHROMIUM": chromium, "HOME": str(Path.home())},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin
    assert proc.stdout
    assert proc.stderr
    reports: list[dict[str, object]] = []

    async def read() -> None:
        assert proc.stdin
        assert proc.stdout
        async for raw in proc.stdout:
            line = raw.decode().strip()
            if not line.startswith("{"):
                continue
            report = json.loads(line)
            reports.append(report)
            if report.get("need") == "tick":
                await _tick(services, str(report["asset"]), str(report["price"]))
                proc.stdin.write(b"ok\n")
                await proc.stdin.drain()

    try:
        await asyncio.wait_for(read(), TIMEOUT_S)
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        last = next((r["step"] for r in reversed(reports) if "step" in r), "start")
        pytest.fail(f"notifications flow timed out after step {last!r}")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
    failed = [r for r in reports if r.get("fail")]
    if failed:
        pytest.fail(f"notifications flow failed at {failed[0]['step']!r}: {failed[0]['error']}")
    stderr = (await proc.stderr.read()).decode()[-4000:]
    assert proc.returncode == 0, stderr
    steps = {str(r["step"]) for r in reports if r.get("ok")}
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
    assert all(not r["violations"] for r in reports if "axe" in r)
    assert len(list(SCREENSHOTS.glob("notifications-desktop-*.png"))) >= 5
    assert len(list(SCREENSHOTS.glob("notifications-phone-*.png"))) >= 5
