"""The web client end to end, in real headless Chromium, against the whole platform.

One platform per module (API, shards, settlement, liquidity provider and the market-data feed
as processes, as `bourse up` runs them) with the demo universe; the flow itself is
`frontend-bff/web/e2e/flow.mjs` (playwright-core driving Debian's chromium), which reports each
step as a JSON line; this test answers its TOTP questions with pyotp (from the secret the page
showed) and fails naming the step that failed. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import next_code
from tests.support.smtp import SmtpServer
from tests.support.stack import Stack
from tests.web.platform import web_platform

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "frontend-bff" / "web"
SCREENSHOTS = ROOT / "var" / "screenshots"
FLOW_TIMEOUT_S = 240
TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


def _need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: {hint}")
    return path


@pytest.fixture(scope="module")
async def platform(settings: Settings) -> AsyncIterator[Stack]:
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    async with web_platform(settings) as stack:
        yield stack


async def run_flow(
    stack: Stack, smtp: SmtpServer, only: str | None = None
) -> list[dict[str, object]]:
    """Runs flow.mjs; returns its reports, failing the test at the first failed step."""
    node = _need("node", "the web client's browser tests need Node.js 20+")
    chromium = _need(
        "chromium", "scripts/test installs Debian's chromium (apt-get install chromium)"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    argv = [node, "e2e/flow.mjs", "--base-url", stack.base_url, "--out", str(SCREENSHOTS)]
    if only:
        argv += ["--only", only]
    proc = await asyncio.create_subprocess_exec(
        *argv,
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
    failure: dict[str, object] | None = None

    async def read() -> None:
        nonlocal failure
        assert proc.stdin
        assert proc.stdout
        async for raw in proc.stdout:
            line = raw.decode().strip()
            if not line.startswith("{"):
                continue
            report = json.loads(line)
            reports.append(report)
            if report.get("need") == "totp":
                code = await next_code(str(report["secret"]))
                proc.stdin.write(f"{code}\n".encode())
                await proc.stdin.drain()
            elif report.get("need") == "email-token":
                mail = (await smtp.inbox.wait_for(str(report["address"]), 1))[-1]
                token = TOKEN_LINE.search(mail.get_content())
                assert token, mail.get_content()
                proc.stdin.write(f"{token.group(1)}\n".encode())
                await proc.stdin.drain()
            elif report.get("need") == "restart-api":
                # SIGKILL: the browser's websocket drops as in a crash; start waits for /readyz.
                await stack.kill("api")
                await asyncio.sleep(1)
                await stack.start("api")
                proc.stdin.write(b"ok\n")
                await proc.stdin.drain()
            elif report.get("fail"):
                failure = report

    try:
        await asyncio.wait_for(read(), FLOW_TIMEOUT_S)
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        last = next((r["step"] for r in reversed(reports) if "step" in r), "start")
        pytest.fail(f"browser flow timed out after step {last!r}")
    stderr = (await proc.stderr.read()).decode()[-4000:]
    if failure is not None:
        pytest.fail(f"browser flow failed at step {failure['step']!r}: {failure['error']}")
    assert proc.returncode == 0, f"flow.mjs exited {proc.returncode}: {stderr}"
    return reports


async def test_the_whole_flow_on_desktop_and_phone(platform: Stack, smtp: SmtpServer) -> None:
    only = os.environ.get("BOURSE_E2E_ONLY")  # desktop | phone, while developing
    reports = await run_flow(platform, smtp, only)
    if only:
        return
    steps = [str(r["step"]) for r in reports if r.get("ok")]
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
    assert all(not r["violations"] for r in reports if "axe" in r)
    assert len(list(SCREENSHOTS.glob("desktop-*.png"))) >= 10
    assert len(list(SCREENSHOTS.glob("phone-*.png"))) >= 10
