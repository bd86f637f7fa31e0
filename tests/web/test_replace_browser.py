"""Replacing an order and placing a trailing stop in real headless Chromium
(`frontend-bff/web/e2e/replace.mjs`) against the platform's real processes: the ticket's
trailing stop (percent), the orders page's Replace action (a new total quantity, then one the
account cannot pay for, refused in the dialog). Screenshots go to var/screenshots/replace-*.png.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bourse.settings import Settings
from models.services import Services, open_services
from tests.accounts.helpers import PASSWORD, new_user
from tests.funds.helpers import deposit
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset
from tests.support.stack import Stack, running_stack

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
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings, shards=1, liquidity=False) as running:
        yield running


@pytest.fixture(scope="module")
async def services(stack: Stack) -> AsyncIterator[Services]:
    s = stack.settings
    assert s.database_url
    assert s.redis_url
    async with open_services(s, s.database_url, s.redis_url, pool_size=2) as opened:
        yield opened


async def test_replace_and_trailing_stop_in_the_browser(stack: Stack, services: Services) -> None:
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    node = _need("node", "the web client's browser tests need Node.js 20+")
    chromium = _need(
        "chromium", "scripts/test installs Debian's chromium (apt-get install chromium)"
    )
    sym = symbol("WR")
    await list_asset(services, sym, "100.00")
    async with stack.client() as api:
        _, email, login = await new_user(api, "wr")
        assert (await deposit(api, login["token"], "1000"))["errors"] == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("replace-*.png"):
        old.unlink()
    proc = await asyncio.create_subprocess_exec(
        node, "e2e/replace.mjs", "--base-url", stack.base_url, "--out", str(SCREENSHOTS),
        "--email", email, "--password", PASSWORD, "--symbol", sym,
        cwd=WEB,
        env={"PATH": "/usr/bin:/bin", "CHROMIUM": chromium, "HOME": str(Path.home())},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the replace flow timed out")
    reports = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    failed = [r for r in reports if r.get("fail")]
    if failed:
        pytest.fail(f"replace flow failed at step {failed[0]['step']!r}: {failed[0]['error']}")
    assert proc.returncode == 0, err.decode()[-4000:]
    steps = {str(r["step"]) for r in reports if r.get("ok")}
    for name in (
        "a resting limit buy of 2 from the ticket",
        "replace it from the orders page: a new total quantity of 3",
        "a replace the account cannot pay for is refused in the dialog",
        "a trailing stop buy by percentage from the ticket",
    ):
        assert name in steps, f"{name} never ran"
    assert all(not r["violations"] for r in reports if "axe" in r)
    assert len(list(SCREENSHOTS.glob("replace-*.png"))) >= 4
