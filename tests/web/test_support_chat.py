"""The support chat in real headless Chromium: a customer and a SUPPORT agent in two browser
contexts (`frontend-bff/web/e2e/support.mjs`) against the session's API, which serves the web
client. Help search (typo and Spanish), suggestions while typing a subject, typing indicator,
live messages both ways, a `<script>` shown as text, an internal note that never reaches the
customer, read receipts, resolving and rating. Screenshots go to var/screenshots/support-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.app.demo.help import ARTICLES
from bourse.settings import Settings
from models.services import Services, open_services
from models.users import Role
from tests.accounts.helpers import PASSWORD, unique
from tests.support.server import Api
from tests.web.flows import SCREENSHOTS, assert_accessible, passed_steps, run_flow

TIMEOUT_S = 150


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=2
    ) as opened:
        yield opened


async def test_customer_and_agent_chat_live_in_two_browsers(api: Api, services: Services) -> None:
    for article in ARTICLES:
        await services.help_centre.save(article)
    _, customer = unique("chatc")
    _, agent = unique("chats")
    await services.accounts.register(unique("chatc")[0], customer, PASSWORD)
    await services.accounts.register(unique("chats")[0], agent, PASSWORD, role=Role.SUPPORT)
    reports = await run_flow(
        "support.mjs",
        ["--base-url", api.base_url, "--customer", customer, "--staff", agent,
         "--password", PASSWORD],
        prefix="support-",
        timeout=TIMEOUT_S,
    )  # fmt: skip
    steps = passed_steps(reports)
    for name in (
        "the customer opens a ticket, with articles suggested while typing the subject",
        "the customer sees the agent typing, then the reply live, as text",
        "an internal note stays on the staff side",
        "the customer replies and the agent receives it live, then sees it was read",
        "Spanish: the help centre in the customer's language",
    ):
        assert name in steps, f"{name} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("support-*.png"))) >= 6
