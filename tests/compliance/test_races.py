"""Races, for real: two reviewers deciding one case at once (one wins, the other is told);
daily screenings running at once open one case; ten withdrawals racing after a password
change are all held, each with exactly its own ledger hold; two accounts giving one tax id at
once are still found out."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from models.compliance_tables import CaseKind, CaseStatus, KycProfile
from models.users import KycStatus, Role
from tests.accounts.helpers import PASSWORD, codes, login, new_user
from tests.compliance.helpers import RESOLVE, cases_of, me_id, services_of, staff_token
from tests.funds.helpers import deposit, withdraw
from tests.support.kyc import fresh_ssn, kyc_input
from tests.support.server import Api

CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { field code message } } }"""


async def test_two_reviewers_one_case(api: Api) -> None:
    _, _, session = await new_user(api, "race", verified=False)
    services = services_of(api)
    user_id = uuid.UUID(me_id(session))
    await services.kyc.submit(user_id, kyc_input("Osric", "Quillberry"))
    first, second = await staff_token(api, Role.COMPLIANCE), await staff_token(api, Role.ADMIN)
    [case] = await cases_of(api, first, str(user_id))
    answers = await asyncio.gather(
        api.gql(RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": "Not the person."}, first),
        api.gql(RESOLVE, {"id": case["id"], "decision": "CLOSE_ACCOUNT", "note": "It is."}, second),
    )
    results = sorted(str(codes(a["data"]["resolveComplianceCase"])) for a in answers)
    assert results == ["['INVALID_STATUS_TRANSITION']", "[]"]
    decided = await services.compliance.get(uuid.UUID(case["id"]))
    assert decided is not None
    user = await services.accounts.get_user(user_id)
    assert user is not None
    # Whichever won, the customer's state follows that one decision.
    if decided.status is CaseStatus.CLEARED:
        assert user.kyc_status is KycStatus.VERIFIED
    else:
        assert decided.status is CaseStatus.CLOSED
        assert user.kyc_status is KycStatus.REJECTED


async def test_screenings_racing_open_one_case(api: Api) -> None:
    _, _, session = await new_user(api, "racescr")  # verified: a clean name at submission
    services = services_of(api)
    user_id = uuid.UUID(me_id(session))
    # The customer's legal name is later found on the list (here: the profile says so now).
    async with services.sessionmaker.begin() as s:
        profile = await s.get_one(KycProfile, user_id)
        profile.legal_first_name, profile.legal_last_name = "Boris", "Sanctionov"
    opened = await asyncio.gather(*(services.kyc.rescreen() for _ in range(4)))
    assert sum(opened) >= 1
    page = await services.compliance.page(user_id=user_id)
    assert [(c.kind, c.status) for c in page.items] == [(CaseKind.SANCTIONS_HIT, CaseStatus.OPEN)]
    assert codes(await withdraw(api, session["token"], "1.00")) == ["ACCOUNT_FROZEN"]


async def test_racing_withdrawals_after_a_password_change_are_all_held(api: Api) -> None:
    _, email, session = await new_user(api, "raceh")
    token = session["token"]
    assert (await deposit(api, token, "100.00"))["errors"] == []
    changed = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Other-Sturdy-Pass-9"}},
        token,
    )  # fmt: skip
    assert changed["data"]["changePassword"]["errors"] == []
    token = (await login(api, email, "Other-Sturdy-Pass-9"))["token"]
    answers = await asyncio.gather(*(withdraw(api, token, "12.34") for _ in range(10)))
    ok = [a for a in answers if not a["errors"]]
    refused = [a for a in answers if a["errors"]]
    assert len(ok) == 8  # 8 x 12.34 = 98.72 fits in 100; the rest has no cash left
    assert {str(codes(a)) for a in refused} == {"['INSUFFICIENT_FUNDS']"}
    services = services_of(api)
    view = await services.funds.account(uuid.UUID(me_id(session)))
    usd = next(c for c in view.cash if c.currency == "USD")
    assert (usd.total, usd.held) == (Decimal("100.00"), Decimal("98.72"))
    for answer in ok:
        txn = await services.funds.get(uuid.UUID(answer["transaction"]["id"]))
        assert txn is not None
        assert txn.hold_reason == "WITHDRAWAL_HELD"
    page = await services.compliance.page(user_id=uuid.UUID(me_id(session)))
    assert sorted(str(c.transaction_id) for c in page.items) == sorted(
        a["transaction"]["id"] for a in ok
    )


async def test_one_tax_id_given_by_two_accounts_at_once(api: Api) -> None:
    services = services_of(api)
    sessions = [await new_user(api, "racetin", verified=False) for _ in range(2)]
    tax_id = fresh_ssn()
    users = await asyncio.gather(
        *(
            services.kyc.submit(uuid.UUID(me_id(s)), kyc_input(tax_id=tax_id))
            for _, _, s in sessions
        )
    )
    assert sorted(u.kyc_status.value for u in users) == ["NEEDS_REVIEW", "VERIFIED"]
    flagged = next(u for u in users if u.kyc_status is KycStatus.NEEDS_REVIEW)
    page = await services.compliance.page(user_id=flagged.id)
    assert [c.kind for c in page.items] == [CaseKind.DUPLICATE_TAX_ID]


async def test_a_repeated_finding_stays_one_case_on_a_reused_statement(api: Api) -> None:
    """asyncpg prepares the insert once per connection and PostgreSQL moves it to a generic
    plan after five runs: the ON CONFLICT inference must still find the partial index."""
    from models.cases import Finding, open_case

    services = services_of(api)
    _, _, session = await new_user(api, "racecase")
    user_id = uuid.UUID(me_id(session))
    finding = Finding(kind=CaseKind.KYC_REVIEW, summary="x", dedupe_key="k", freezes=False)
    async with services.sessionmaker.begin() as s:
        opened = [await open_case(s, user_id, finding) for _ in range(8)]
    assert opened[0] is not None
    assert opened[1:] == [None] * 7
