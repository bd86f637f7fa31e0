"""A bracket order placed from the ticket in real headless Chromium
(`frontend-bff/web/e2e/bracket.mjs`) against the platform's real processes: refused early with
a take-profit below the buy, then placed with its take-profit and stop-loss; its legs show in
the ticket's result and on the orders page, on a desktop in English and on a phone in Spanish.
Screenshots go to var/screenshots/bracket-*.png.
"""

from __future__ import annotations

from models.services import Services
from tests.accounts.helpers import PASSWORD, new_user
from tests.funds.helpers import deposit
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset
from tests.support.stack import Stack
from tests.web.flows import SCREENSHOTS, assert_accessible, passed_steps, run_flow

TIMEOUT_S = 180
SPANISH = """mutation { updateProfile(input: {preferredLanguage: "es"}) { errors { code } } }"""


async def test_a_bracket_from_the_ticket_shows_its_legs(stack: Stack, services: Services) -> None:
    sym = symbol("WB")
    await list_asset(services, sym, "100.00")
    async with stack.client() as api:
        _, email, login = await new_user(api, "wb")
        assert (await deposit(api, login["token"], "1000"))["errors"] == []
        _, email_es, login_es = await new_user(api, "wbes")
        assert (await deposit(api, login_es["token"], "1000"))["errors"] == []
        body = await api.gql(SPANISH, token=login_es["token"])
        assert body["data"]["updateProfile"]["errors"] == [], body
    reports = await run_flow(
        "bracket.mjs",
        [
            "--base-url", stack.base_url, "--email", email, "--email-es", email_es,
            "--password", PASSWORD, "--symbol", sym,
        ],
        prefix="bracket-",
        timeout=TIMEOUT_S,
    )  # fmt: skip
    steps = passed_steps(reports)
    for device in ("desktop", "phone"):
        for name in (
            "a bracket buy from the ticket",
            "the orders page shows the bracket's legs",
        ):
            assert f"{device}: {name}" in steps, f"{device}: {name} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("bracket-*.png"))) >= 10
