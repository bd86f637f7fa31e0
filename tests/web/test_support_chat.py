"""The support chat in real headless Chromium: a customer and a SUPPORT agent in two browser
contexts (`frontend-bff/web/e2e/support.mjs`) against the session's API, which serves the web
client. Help search (typo and Spanish), suggestions while typing a subject, typing indicator,
live messages both ways, a `<script>` shown as text, an internal note that never reaches the
customer, read receipts, resolving and rating. Screenshots go to var/screenshots/support-*.png.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bourse.app.demo.help import ARTICLES
from bourse.settings import Settings
from models.services import Services, open_services
from models.users import Role
from tests.accounts.helpers import PASSWORD, unique
from tests.support.server import Api

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "frontend-bff" / "web"
SCREENSHOTS = ROOT / "var" / "screenshots"
TIMEOUT_S = 150


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
        settings, settings.database_url, settings.redis_url, pool_size=2
    ) as opened:
        yield opened


async def test_customer_and_agent_chat_live_in_two_browsers(api: Api, services: Services) -> None:
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    node = _need("node", "the web client's browser tests need Node.js 20+")
    chromium = _need(
        "chromium", "scripts/test installs Debian's chromium (apt-get install chromium)"
    )
    for article in ARTICLES:
        await services.help_centre.save(article)
    _, customer = unique("chatc")
    _, agent = unique("chats")
    await services.accounts.register(unique("chatc")[0], customer, PASSWORD)
    await services.accounts.register(unique("chats")[0], agent, PASSWORD, role=Role.SUPPORT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("support-*.png"):
        old.unlink()
    proc = await asyncio.create_subprocess_exec(
        node, "e2e/support.mjs", "--base-url", api.base_url, "--out", str(SCREENSHOTS),
        "--customer", customer, "--staff", agent, "--password", PASSWORD,
        cwd=WEB,
        env={"PATH": "/usr/bin:/bin", "CHROMIUM": chromium, "HOME": str(Path.home())},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the support chat flow timed out")
    reports = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    failed = [r for r in reports if r.get("fail")]
    if failed:
        pytest.fail(f"support chat failed at step {failed[0]['step']!r}: {failed[0]['error']}")
    assert proc.returncode == 0, err.decode()[-4000:]
    steps = {str(r["step"]) for r in reports if r.get("ok")}
    for name in (
        "the customer opens a ticket, with articles suggested while typing the subject",
        "the customer sees the agent typing, then the reply live, as text",
        "an internal note stays on the staff side",
        "the customer replies and the agent receives it live, then sees it was read",
        "Spanish: the help centre in the customer's language",
    ):
        assert name in steps, f"{name} never ran"
    assert all(not r["violations"] for r in reports if "axe" in r)
    assert len(list(SCREENSHOTS.glob("support-*.png"))) >= 6
