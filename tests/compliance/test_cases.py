"""AML and fraud controls against the real platform: a sanctions hit opens a case that
freezes withdrawals (ACCOUNT_FROZEN) until COMPLIANCE clears it; a structuring pattern opens a
case; a withdrawal right after a password change is held (PENDING, holdReason) with its money
reserved, and the decision moves or frees exactly that; CUSTOMER and SUPPORT cannot resolve;
every decision is in the audit log."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from bourse.settings import Settings
from models.users import Role
from tests.accounts.helpers import PASSWORD, codes, login, new_user, submit_kyc, unique
from tests.compliance.helpers import (
    CASES,
    RESOLVE,
    audit_actions,
    cases_of,
    me_id,
    services_of,
    staff_token,
)
from tests.funds.helpers import ACCOUNT, DEPOSIT, TRANSACTIONS, deposit, key, withdraw
from tests.support.polling import eventually
from tests.support.server import Api
from tests.test_staff import bourse

CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { field code message } } }"""


async def cash(api: Api, token: str) -> dict[str, Decimal]:
    body = await api.gql(ACCOUNT, token=token)
    usd = next(c for c in body["data"]["account"]["cash"] if c["currency"] == "USD")
    return {k: Decimal(usd[k]) for k in ("total", "available", "held")}


async def test_sanctions_hit_freezes_withdrawals_until_cleared(api: Api) -> None:
    _, _, session = await new_user(api, "sdn", verified=False)
    token = session["token"]
    user_id = me_id(session)
    # "Borís Sanctionoff" is the sample list's alias of entry 9001, spelt another way.
    done = await submit_kyc(api, token, first="Borís", last="Sanctionoff")
    assert done["user"]["kycStatus"] == "NEEDS_REVIEW"
    assert codes(await withdraw(api, token, "1.00")) == ["KYC_REQUIRED"]

    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, user_id)
    assert case["kind"] == "SANCTIONS_HIT"
    assert case["status"] == "OPEN"
    assert case["freezes"] is True
    assert "9001" in case["summary"]
    assert case["legalName"] == "Borís Sanctionoff"

    # A customer and a support agent may not decide it (nor read the queue).
    support = await staff_token(api, Role.SUPPORT)
    for who in (token, support):
        body = await api.gql(RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": "x"}, who)
        assert body["data"]["resolveComplianceCase"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        listed = await api.gql(CASES, {"first": 5}, who)
        assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    no_note = await api.gql(RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": " "}, officer)
    assert codes(no_note["data"]["resolveComplianceCase"]) == ["INVALID_INPUT"]
    cleared = await api.gql(
        RESOLVE,
        {"id": case["id"], "decision": "CLEAR", "note": "Different date of birth than 9001."},
        officer,
    )
    payload = cleared["data"]["resolveComplianceCase"]
    assert payload["errors"] == []
    assert payload["case"]["status"] == "CLEARED"
    assert payload["case"]["customer"]["kycStatus"] == "VERIFIED"
    twice = await api.gql(RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": "y"}, officer)
    assert codes(twice["data"]["resolveComplianceCase"]) == ["INVALID_STATUS_TRANSITION"]

    assert (await deposit(api, token, "50.00"))["errors"] == []
    assert (await withdraw(api, token, "5.00"))["errors"] == []

    actions = await audit_actions(api, officer, user_id)
    assert any(a == "compliance.case_opened" and o.startswith("SANCTIONS_HIT") for a, o in actions)
    assert any(a == "compliance.decision" and o.startswith("CLEAR:SANCTIONS_HIT") for a, o in
               actions)  # fmt: skip
    assert ("kyc.decision", "NEEDS_REVIEW:SANCTIONS_HIT") in actions


async def test_daily_screening_freezes_a_verified_customer(api: Api) -> None:
    _, _, session = await new_user(api, "sdnd", verified=False)
    token = session["token"]
    services = services_of(api)
    done = await submit_kyc(api, token, first="Selene", last="Mordant")
    assert done["user"]["kycStatus"] == "NEEDS_REVIEW"  # screened at submission already
    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, me_id(session))
    escalated = await api.gql(
        RESOLVE, {"id": case["id"], "decision": "ESCALATE", "note": "Refer to the MLRO."}, officer
    )
    assert escalated["data"]["resolveComplianceCase"]["case"]["status"] == "ESCALATED"
    # The escalated case stays open: the daily run finds the same entry and opens nothing new.
    await services.kyc.rescreen()
    assert len(await cases_of(api, officer, me_id(session))) == 1
    assert codes(await withdraw(api, token, "1.00")) == ["KYC_REQUIRED"]


async def test_structuring_opens_a_case_and_freezes(api: Api) -> None:
    _, _, session = await new_user(api, "struct")
    token = session["token"]
    user_id = me_id(session)
    for amount in ("9500.00", "9800.00", "9900.00"):  # each just under 10,000
        assert (await deposit(api, token, amount))["errors"] == []
    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, user_id)
    assert case["kind"] == "STRUCTURING"
    assert case["freezes"] is True
    assert "3 deposits" in case["summary"]
    assert codes(await withdraw(api, token, "100.00")) == ["ACCOUNT_FROZEN"]
    # The customer is not told (no tipping off): no notification names the case.
    inbox = await api.gql("{ notifications(first: 20) { edges { node { title body } } } }",
                          token=token)  # fmt: skip
    texts = " ".join(e["node"]["title"] + e["node"]["body"] for e in
                     inbox["data"]["notifications"]["edges"])  # fmt: skip
    assert "structur" not in texts.lower()


async def test_withdrawal_after_password_change_is_held_then_released(api: Api) -> None:
    _, email, session = await new_user(api, "held")
    token = session["token"]
    user_id = me_id(session)
    assert (await deposit(api, token, "300.00"))["errors"] == []
    changed = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Other-Sturdy-Pass-7"}},
        token,
    )  # fmt: skip
    assert changed["data"]["changePassword"]["errors"] == []
    again = await login(api, email, "Other-Sturdy-Pass-7")
    token = again["token"]

    held = await withdraw(api, token, "120.00")
    assert held["errors"] == []
    txn = held["transaction"]
    assert txn["status"] == "PENDING"
    body = await api.gql(TRANSACTIONS, {"type": "WITHDRAWAL"}, token)
    node = body["data"]["transactions"]["edges"][0]["node"]
    assert node["id"] == txn["id"]
    listed = await api.gql(
        "{ transactions(type: WITHDRAWAL, first: 1) { edges { node { holdReason } } } }",
        token=token,
    )
    assert listed["data"]["transactions"]["edges"][0]["node"]["holdReason"] == "WITHDRAWAL_HELD"
    assert await cash(api, token) == {"total": Decimal("300.00"), "available": Decimal("180.00"),
                                      "held": Decimal("120.00")}  # fmt: skip
    # The worker's job (and its sweep) must not pay a held withdrawal out.
    services = services_of(api)
    job = await services.funds.complete_withdrawal(uuid.UUID(txn["id"]))
    assert job is not None
    assert job.status.value == "PENDING"

    inbox = await api.gql("{ notifications(first: 20) { edges { node { title } } } }", token=token)
    titles = [e["node"]["title"] for e in inbox["data"]["notifications"]["edges"]]
    assert "Withdrawal held for review" in titles

    officer = await staff_token(api, Role.COMPLIANCE)
    [case] = await cases_of(api, officer, user_id)
    assert case["kind"] == "WITHDRAWAL_HELD"
    assert case["transactionId"] == txn["id"]
    assert "password" in case["summary"]
    assert case["freezes"] is False
    cleared = await api.gql(
        RESOLVE, {"id": case["id"], "decision": "CLEAR", "note": "Customer confirmed by phone."},
        officer,
    )  # fmt: skip
    assert cleared["data"]["resolveComplianceCase"]["errors"] == []

    async def paid() -> dict[str, Decimal] | None:
        now = await cash(api, token)
        return now if now["total"] == Decimal("180.00") else None

    assert await eventually(paid, timeout=15) == {
        "total": Decimal("180.00"), "available": Decimal("180.00"), "held": Decimal("0.00")
    }  # fmt: skip
    actions = await audit_actions(api, officer, user_id)
    assert any(a == "compliance.decision" and o.startswith("CLEAR:WITHDRAWAL_HELD") for a, o in
               actions)  # fmt: skip


async def test_closing_on_a_held_withdrawal_frees_exactly_its_hold(api: Api) -> None:
    _, email, session = await new_user(api, "heldx")
    token = session["token"]
    assert (await deposit(api, token, "250.00"))["errors"] == []
    changed = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Other-Sturdy-Pass-8"}},
        token,
    )  # fmt: skip
    assert changed["data"]["changePassword"]["errors"] == []
    token = (await login(api, email, "Other-Sturdy-Pass-8"))["token"]
    held = await withdraw(api, token, "99.99")
    assert held["transaction"]["status"] == "PENDING"
    officer = await staff_token(api, Role.ADMIN)  # ADMIN may decide too
    [case] = await cases_of(api, officer, me_id(session))
    closed = await api.gql(
        RESOLVE, {"id": case["id"], "decision": "CLOSE_ACCOUNT", "note": "Account takeover."},
        officer,
    )  # fmt: skip
    assert closed["data"]["resolveComplianceCase"]["case"]["status"] == "CLOSED"
    # Signed out everywhere; the money is the customer's again, to the cent.
    me = await api.gql("{ me { id } }", token=token)
    assert me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    services = services_of(api)
    txn = await services.funds.get(uuid.UUID(held["transaction"]["id"]))
    assert txn is not None
    assert txn.status.value == "FAILED"
    view = await services.funds.account(uuid.UUID(me_id(session)))
    usd = next(c for c in view.cash if c.currency == "USD")
    assert (usd.total, usd.available, usd.held) == (
        Decimal("250.00"), Decimal("250.00"), Decimal("0.00")
    )  # fmt: skip
    relogin = await login(api, email, "Other-Sturdy-Pass-8")
    assert codes(await withdraw(api, relogin["token"], "1.00")) == ["KYC_REQUIRED"]


async def test_velocity_limits_per_method_and_per_user(api: Api) -> None:
    _, _, session = await new_user(api, "velo")
    token = session["token"]
    assert (await deposit(api, token, "100.00"))["errors"] == []
    for _ in range(15):  # BOURSE_WITHDRAWALS_PER_DAY_PER_METHOD
        assert (await withdraw(api, token, "1.00"))["errors"] == []
    sixteenth = await withdraw(api, token, "1.00")
    assert codes(sixteenth) == ["LIMIT_EXCEEDED"]
    assert sixteenth["errors"][0]["field"] == "withdrawalMethod"
    # Another method is still open until the user's own daily count (25) is reached.
    for _ in range(10):
        assert (await withdraw(api, token, "1.00", method="sandbox:savings"))["errors"] == []
    last = await withdraw(api, token, "1.00", method="sandbox:third")
    assert codes(last) == ["LIMIT_EXCEEDED"]
    assert last["errors"][0]["field"] == "amount"
    # 25 withdrawals of 1.00 went through (held or paid by now); the refused ones moved nothing.
    assert (await cash(api, token))["available"] == Decimal("75.00")


async def test_admin_create_makes_a_compliance_officer(api: Api, settings: Settings) -> None:
    username, email = unique("cmpcli")
    code, out = await bourse(
        settings, "admin", "create", "--email", email, "--password", "Staff-Pass-2026",
        "--username", username, "--role", "COMPLIANCE",
    )  # fmt: skip
    assert code == 0, out
    assert "created COMPLIANCE" in out
    token = (await login(api, email, "Staff-Pass-2026"))["token"]
    assert "errors" not in await api.gql(CASES, {"first": 1}, token)
    events = await api.gql("{ auditEvents(first: 1) { edges { node { id } } } }", token=token)
    assert "errors" not in events
    # Reviewing is not acting: COMPLIANCE may not move money.
    refused = await deposit_raw(api, token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def deposit_raw(api: Api, token: str) -> dict[str, Any]:
    return await api.gql(
        DEPOSIT,
        {"input": {"amount": "1", "currency": "USD", "paymentMethod": "sandbox:bank",
                   "idempotencyKey": key()}},
        token,
    )  # fmt: skip
