"""What happens after a KYC submission leaves the happy path (issue 17): a reviewer clearing our
own check's case does not verify an identity the provider never saw (the provider is asked
then, and its answer stands); a submission the provider never answered is asked again by the
sweep; a large withdrawal from a device the customer never signed in from is held; and a new
sanctions file is used without a restart."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from models.compliance_tables import KycProfile
from models.kyc_providers import KycDecision, KycProvider, KycSubmission
from models.sanctions import SanctionsSource
from models.users import KycStatus, Role
from tests.accounts.helpers import LOGIN, PASSWORD, codes, new_user, submit_kyc
from tests.compliance.helpers import (
    RESOLVE,
    audit_actions,
    cases_of,
    me_id,
    services_of,
    staff_token,
)
from tests.funds.helpers import deposit, withdraw
from tests.support.kyc import fresh_ssn
from tests.support.server import Api
from workers.compliance import reask_pending_kyc


async def test_clearing_a_duplicate_tax_id_asks_the_provider_whose_answer_stands(
    api: Api,
) -> None:
    shared = fresh_ssn()
    _, _, first = await new_user(api, "tin1", verified=False)
    assert (await submit_kyc(api, first["token"], tax_id=shared))["user"]["kycStatus"] == (
        "VERIFIED"
    )
    # A second account gives the same tax id, and a name the sandbox provider rejects.
    _, _, second = await new_user(api, "tin2", verified=False)
    user_id = me_id(second)
    done = await submit_kyc(api, second["token"], last="Walker-reject", tax_id=shared)
    assert done["user"]["kycStatus"] == "NEEDS_REVIEW"

    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, user_id)
    assert case["kind"] == "DUPLICATE_TAX_ID"
    cleared = await api.gql(
        RESOLVE,
        {"id": case["id"], "decision": "CLEAR", "note": "A second account of the same person."},
        officer,
    )
    payload = cleared["data"]["resolveComplianceCase"]
    assert payload["errors"] == []
    # The reviewer cleared the duplicate; the identity itself was the provider's to decide.
    assert payload["case"]["customer"]["kycStatus"] == "REJECTED"
    assert codes(await withdraw(api, second["token"], "1.00")) == ["KYC_REQUIRED"]
    actions = await audit_actions(api, officer, user_id)
    assert ("kyc.decision", "NEEDS_REVIEW:DUPLICATE_TAX_ID") in actions
    assert any(a == "kyc.decision" and o.startswith("REJECTED") for a, o in actions)


async def test_clearing_the_providers_own_review_verifies(api: Api) -> None:
    _, _, session = await new_user(api, "rev", verified=False)
    done = await submit_kyc(api, session["token"], last="Ramos-review")
    assert done["user"]["kycStatus"] == "NEEDS_REVIEW"
    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, me_id(session))
    assert case["kind"] == "KYC_REVIEW"
    cleared = await api.gql(
        RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": "Documents checked by hand."},
        officer,
    )  # fmt: skip
    assert cleared["data"]["resolveComplianceCase"]["case"]["customer"]["kycStatus"] == ("VERIFIED")


class SilentProvider:
    """A vendor that takes the submission and never calls back (its webhook lost)."""

    name = "sandbox"

    def __init__(self) -> None:
        self.asked: list[uuid.UUID] = []

    async def verify(self, user_id: uuid.UUID, submission: KycSubmission) -> KycDecision:
        self.asked.append(user_id)
        return KycDecision(KycStatus.PENDING, None, None)


async def test_a_submission_the_provider_never_answered_is_asked_again(api: Api) -> None:
    services = services_of(api)
    _, _, stale = await new_user(api, "pend", verified=False)
    _, _, fresh = await new_user(api, "pend2", verified=False)
    sandbox: KycProvider = services.kyc.provider
    silent = SilentProvider()
    services.kyc.provider = silent
    try:
        for who in (stale, fresh):
            assert (await submit_kyc(api, who["token"]))["user"]["kycStatus"] == "PENDING"
    finally:
        services.kyc.provider = sandbox
    assert len(silent.asked) == 2
    stale_id = uuid.UUID(me_id(stale))
    # Only the older one is due: it has waited longer than BOURSE_KYC_REASK_AFTER_SECONDS.
    wait = timedelta(seconds=services.settings.kyc_reask_after_seconds + 60)
    async with services.sessionmaker.begin() as s:
        profile = await services.kyc.profile(stale_id)
        assert profile is not None
        await s.execute(
            update(KycProfile)
            .where(KycProfile.user_id == stale_id)
            .values(submitted_at=profile.submitted_at - wait)
        )
    assert await reask_pending_kyc({"services": services}) >= 1
    me = "{ me { kycStatus } }"
    assert (await api.gql(me, token=stale["token"]))["data"]["me"]["kycStatus"] == "VERIFIED"
    assert (await api.gql(me, token=fresh["token"]))["data"]["me"]["kycStatus"] == "PENDING"
    # A second sweep finds nothing more for the verified one, and never un-verifies it.
    await reask_pending_kyc({"services": services})
    assert (await api.gql(me, token=stale["token"]))["data"]["me"]["kycStatus"] == "VERIFIED"


async def sign_in_from(api: Api, email: str, agent: str) -> str:
    response = await api.http.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"input": {"email": email, "password": PASSWORD}}},
        headers={"User-Agent": agent},
    )
    body: dict[str, Any] = response.json()
    token: str = body["data"]["login"]["token"]
    return token


async def test_a_large_withdrawal_from_a_new_device_is_held(api: Api) -> None:
    services = services_of(api)
    limit = services.settings.fraud_new_device_withdrawal_limit
    _, email, session = await new_user(api, "dev")
    home = session["token"]  # the account's first sign-in (the test client's agent)
    assert (await deposit(api, home, str(limit * 4)))["errors"] == []
    above = str(limit + 1)

    phone = await sign_in_from(api, email, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari/605")
    small = await withdraw(api, phone, str(limit - 1))
    assert small["errors"] == []
    large = await withdraw(api, phone, above)
    assert large["errors"] == []
    held_id = large["transaction"]["id"]
    listed = await api.gql(
        "{ transactions(type: WITHDRAWAL, first: 5) { edges { node { id holdReason } } } }",
        token=home,
    )
    reasons = {e["node"]["id"]: e["node"]["holdReason"] for e in listed["data"]["transactions"]
               ["edges"]}  # fmt: skip
    assert reasons[held_id] == "WITHDRAWAL_HELD"
    assert reasons[small["transaction"]["id"]] is None
    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = [c for c in await cases_of(api, officer, me_id(session))
              if c["transactionId"] == held_id]  # fmt: skip
    assert case["kind"] == "WITHDRAWAL_HELD"
    assert "device" in case["summary"]

    # The same amount from the device the account has always used goes through.
    again = await withdraw(api, home, above)
    assert again["errors"] == []
    listed = await api.gql(
        "{ transactions(type: WITHDRAWAL, first: 5) { edges { node { id holdReason } } } }",
        token=home,
    )
    reasons = {e["node"]["id"]: e["node"]["holdReason"] for e in listed["data"]["transactions"]
               ["edges"]}  # fmt: skip
    assert reasons[again["transaction"]["id"]] is None


def write_list(path: Path, *entries: str) -> None:
    rows = [
        f'{900 + i},"{name}","individual","TEST",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0-'
        for i, name in enumerate(entries)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_new_sanctions_file_is_used_without_a_restart(tmp_path: Path) -> None:
    sdn = tmp_path / "sdn.csv"
    write_list(sdn, "NOBODY, Anne")
    source = SanctionsSource(sdn)
    assert source().screen("Quentin Vasquez-Larrow") is None
    first = source()
    assert source() is first  # unchanged files: not re-read

    write_list(sdn, "NOBODY, Anne", "VASQUEZ-LARROW, Quentin")
    found = source().screen("Quentin Vasquez-Larrow")
    assert found is not None
    # An alias file dropped in beside it counts as a change too.
    (tmp_path / "alt.csv").write_text('901,1,"aka","LARROW, Q. V."\n', encoding="utf-8")
    assert source() is not first


def test_an_unreadable_first_list_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        SanctionsSource(tmp_path / "missing.csv")()
