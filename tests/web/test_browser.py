"""The web client end to end, in real headless Chromium, against the whole platform.

One platform per module (API, shards, settlement, liquidity provider and the market-data feed
as processes, as `bourse up` runs them) with the demo universe; the flow itself is
`frontend-bff/web/e2e/flow.mjs` (playwright-core driving Debian's chromium), which reports each
step as a JSON line; this test answers its TOTP questions with pyotp (from the secret the page
showed) and fails naming the step that failed. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import next_code
from tests.support.smtp import SmtpServer, text_of
from tests.support.stack import Stack
from tests.web.flows import (
    SCREENSHOTS,
    WEB,
    Answer,
    Report,
    assert_accessible,
    passed_steps,
    run_flow,
)
from tests.web.platform import web_platform

FLOW_TIMEOUT_S = 240
TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


@pytest.fixture(scope="module")
async def platform(settings: Settings) -> AsyncIterator[Stack]:
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    async with web_platform(settings) as stack:
        yield stack


def answers(stack: Stack, smtp: SmtpServer) -> Answer:
    """What flow.mjs asks of its driver: TOTP codes (from the secret the page showed, with
    pyotp), the token mailed to an address (the test's SMTP server), an API restart."""

    async def answer(report: Report) -> str:
        need = report["need"]
        if need == "totp":
            return await next_code(str(report["secret"]))
        if need == "email-token":
            mail = await smtp.inbox.wait_for_subject(
                str(report["address"]), "Confirm your new Bourse email"
            )
            token = TOKEN_LINE.search(text_of(mail))
            assert token, text_of(mail)
            return token.group(1)
        if need == "restart-api":
            # SIGKILL: the browser's websocket drops as in a crash; start waits for /readyz.
            await stack.kill("api")
            await asyncio.sleep(1)
            await stack.start("api")
            return "ok"
        raise AssertionError(f"flow.mjs asked for {need!r}")

    return answer


async def test_the_whole_flow_on_desktop_and_phone(platform: Stack, smtp: SmtpServer) -> None:
    only = os.environ.get("BOURSE_E2E_ONLY")  # desktop | phone, while developing
    reports = await run_flow(
        "flow.mjs",
        ["--base-url", platform.base_url, *(["--only", only] if only else [])],
        prefix=("desktop-", "phone-", "public-", "FAILED"),
        timeout=FLOW_TIMEOUT_S,
        answer=answers(platform, smtp),
    )
    if only:
        return
    steps = passed_steps(reports)
    # Every step of both runs happened (a flow that silently skipped steps fails here).
    for label in ("desktop", "phone"):
        for name in (
            "sign up",
            "enable 2FA",
            "sign in with a TOTP code",
            "deposit $1,000",
            "buy $100 of BTC-USD by dollar amount",
            "the holding appears on home with no reload",
            "a resting limit order, cancelled: its hold is released",
            "add the asset to a watchlist",
            "documents: a statement prepared by the worker, ready to download",
            "switch to Spanish, same page translated with localised numbers",
        ):
            assert f"{label}: {name}" in steps, f"{label}: {name} never ran"
    assert "desktop: change the email, confirmed from the new address" in steps
    assert "desktop: the API restarts: a banner while reconnecting, then live again" in steps
    assert "phone: installable PWA (manifest valid, service worker registered)" in steps
    assert "public: a revoked session lands on sign-in with nothing private left" in steps
    screens = {str(r["axe"]) for r in reports if "axe" in r}
    assert len(screens) >= 20, screens
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("desktop-*.png"))) >= 10
    assert len(list(SCREENSHOTS.glob("phone-*.png"))) >= 10
