"""Replacing an order and placing a trailing stop in real headless Chromium
(`frontend-bff/web/e2e/replace.mjs`) against the platform's real processes: the ticket's
trailing stop (percent), the orders page's Replace action (a new total quantity, then one the
account cannot pay for, refused in the dialog). Screenshots go to var/screenshots/replace-*.png.
"""

from __future__ import annotations

from models.services import Services
from tests.accounts.helpers import PASSWORD, new_user
from tests.funds.helpers import deposit
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset
from tests.support.stack import Stack
from tests.web.flows import SCREENSHOTS, assert_accessible, passed_steps, run_flow

TIMEOUT_S = 150


async def test_replace_and_trailing_stop_in_the_browser(stack: Stack, services: Services) -> None:
    sym = symbol("WR")
    await list_asset(services, sym, "100.00")
    async with stack.client() as api:
        _, email, login = await new_user(api, "wr")
        assert (await deposit(api, login["token"], "1000"))["errors"] == []
    reports = await run_flow(
        "replace.mjs",
        ["--base-url", stack.base_url, "--email", email, "--password", PASSWORD, "--symbol", sym],
        prefix="replace-",
        timeout=TIMEOUT_S,
    )
    steps = passed_steps(reports)
    for name in (
        "a resting limit buy of 2 from the ticket",
        "replace it from the orders page: a new total quantity of 3",
        "a replace the account cannot pay for is refused in the dialog",
        "a trailing stop buy by percentage from the ticket",
    ):
        assert name in steps, f"{name} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("replace-*.png"))) >= 4
