"""The compliance queue in real headless Chromium (`frontend-bff/web/e2e/compliance.mjs`):
a customer whose legal name matched the sanctions list sees the review on the transfer form
and in Settings; a COMPLIANCE officer finds the case in the staff area and clears it with a
note, on a desktop and a phone; the customer is then verified. Screenshots go to
var/screenshots/compliance-*.png."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.compliance_tables import CaseStatus
from models.services import Services, open_services
from models.users import KycStatus, Role
from tests.accounts.helpers import PASSWORD, unique
from tests.support.kyc import kyc_input
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


async def test_officer_clears_a_sanctions_case_in_the_staff_area(
    api: Api, services: Services
) -> None:
    name, customer = unique("sdnweb")
    officer_name, officer = unique("cmpweb")
    user = await services.accounts.register(name, customer, PASSWORD)
    await services.accounts.register(officer_name, officer, PASSWORD, role=Role.COMPLIANCE)
    submitted = await services.kyc.submit(user.id, kyc_input("Viktor", "Darkwater"))
    assert submitted.kyc_status is KycStatus.NEEDS_REVIEW
    reports = await run_flow(
        "compliance.mjs",
        ["--base-url", api.base_url, "--customer", customer, "--staff", officer,
         "--password", PASSWORD],
        prefix="compliance-",
        timeout=TIMEOUT_S,
    )  # fmt: skip
    steps = passed_steps(reports)
    for step in (
        "the customer in review: the transfer form and Settings say so",
        "the officer opens the queue and clears the sanctions case with a note",
        "on a phone: the queue and the customer, now verified",
    ):
        assert step in steps, f"{step} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("compliance-*.png"))) >= 5
    page = await services.compliance.page(user_id=user.id)
    assert [c.status for c in page.items] == [CaseStatus.CLEARED]
    cleared = await services.accounts.get_user(user.id)
    assert cleared is not None
    assert cleared.kyc_status is KycStatus.VERIFIED
