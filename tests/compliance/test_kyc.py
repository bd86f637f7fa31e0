"""KYC against the real platform: an unverified customer cannot trade or withdraw
(KYC_REQUIRED), a sandbox-verified one can; the tax id is stored sealed (read straight from
PostgreSQL) and shown masked; bad input is a coded error; every decision is audited."""

from __future__ import annotations

import uuid

import asyncpg

from bourse.app.demo.loader import (
    DEMO_COMPLIANCE_EMAIL,
    DEMO_COMPLIANCE_PASSWORD,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    load_demo,
)
from bourse.settings import Settings
from models.recurring import Frequency, RunStatus
from models.users import KycStatus, Role
from tests.accounts.helpers import ME, codes, kyc_input, login, new_user, submit_kyc
from tests.compliance.helpers import audit_actions, me_id, services_of, staff_token
from tests.funds.helpers import deposit, withdraw
from tests.orders.helpers import PLACE, list_asset
from tests.support.server import Api

SYMBOL = "KYCQ"


def limit_buy(qty: str = "1") -> dict[str, object]:
    return {"input": {"assetId": SYMBOL, "orderType": "BUY", "orderSubType": "LIMIT",
                      "quantity": qty, "price": "10.00", "timeInForce": "GTC"}}  # fmt: skip


async def test_unverified_cannot_trade_or_withdraw_verified_can(api: Api) -> None:
    await list_asset(services_of(api), SYMBOL, "10.00")
    _, _, session = await new_user(api, "kyc", verified=False)
    token = session["token"]
    me = await api.gql(ME, token=token)
    assert me["data"]["me"]["kycStatus"] == "NOT_SUBMITTED"

    # Deposits may precede verification, up to the limit (1,000 USD in all by default).
    assert (await deposit(api, token, "600.00"))["errors"] == []
    over = await deposit(api, token, "500.00")
    assert codes(over) == ["KYC_REQUIRED"]
    placed = (await api.gql(PLACE, limit_buy(), token))["data"]["placeOrder"]
    assert codes(placed) == ["KYC_REQUIRED"]
    assert placed["order"] is None
    refused = await withdraw(api, token, "10.00")
    assert codes(refused) == ["KYC_REQUIRED"]

    done = await submit_kyc(api, token, tax_id="234-56-7899")
    assert done["errors"] == []
    assert done["user"]["kycStatus"] == "VERIFIED"
    assert done["user"]["taxIdMasked"] == "***-**-7899"

    placed = (await api.gql(PLACE, limit_buy(), token))["data"]["placeOrder"]
    assert placed["errors"] == []
    assert placed["order"]["status"] == "PENDING"
    paid = await withdraw(api, token, "10.00")
    assert paid["errors"] == []
    assert paid["transaction"]["status"] == "PENDING"
    assert (await deposit(api, token, "500.00"))["errors"] == []  # no cap once verified


async def test_tax_id_is_sealed_at_rest(api: Api, settings: Settings) -> None:
    _, _, session = await new_user(api, "kycdb", verified=False)
    tax_id = "078-51-2345"
    done = await submit_kyc(api, session["token"], tax_id=tax_id)
    assert done["user"]["kycStatus"] == "VERIFIED"
    assert settings.database_url
    conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        row = await conn.fetchrow("SELECT * FROM kyc_profiles WHERE user_id = $1", me_id(session))
    finally:
        await conn.close()
    assert row is not None
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    for plain in (tax_id, tax_id.replace("-", ""), "1985-06-15", "Springfield", "1 Test Street"):
        assert plain.encode() not in raw, plain
    assert row["tax_id_kind"] == "SSN"
    assert len(row["tax_id_bidx"]) == 32


async def test_bad_input_is_coded_and_resubmission_refused(api: Api) -> None:
    _, _, session = await new_user(api, "kycbad", verified=False)
    token = session["token"]
    bad = kyc_input(tax_id="666-12-3456")  # area 666 is never an SSN
    bad["dateOfBirth"] = "2020-01-01"  # a child
    bad["address"]["country"] = "USA"
    bad["legalFirstName"] = " "
    body = await api.gql(
        """mutation($input: SubmitKycInput!) { submitKyc(input: $input) {
        user { id } errors { field code } } }""",
        {"input": bad},
        token,
    )
    errors = {(e["field"], e["code"]) for e in body["data"]["submitKyc"]["errors"]}
    assert errors == {
        ("taxId", "INVALID_TAX_ID"),
        ("dateOfBirth", "INVALID_DATE_OF_BIRTH"),
        ("address.country", "INVALID_INPUT"),
        ("legalFirstName", "INVALID_INPUT"),
    }
    me = await api.gql(ME, token=token)
    assert me["data"]["me"]["kycStatus"] == "NOT_SUBMITTED"
    assert (await submit_kyc(api, token, tax_id="912-70-1234"))["user"]["kycStatus"] == "VERIFIED"
    again = await submit_kyc(api, token)
    assert codes(again) == ["KYC_ALREADY_SUBMITTED"]


async def test_sandbox_outcomes_by_last_name_and_audit(api: Api) -> None:
    _, _, review = await new_user(api, "kycrev", verified=False)
    _, _, reject = await new_user(api, "kycrej", verified=False)
    assert (await submit_kyc(api, review["token"], last="Doe-review"))["user"][
        "kycStatus"
    ] == "NEEDS_REVIEW"
    rejected = await submit_kyc(api, reject["token"], last="Doe-reject")
    assert rejected["user"]["kycStatus"] == "REJECTED"
    assert codes(await withdraw(api, reject["token"], "1.00")) == ["KYC_REQUIRED"]
    # A rejected customer may correct the details and submit again.
    assert (await submit_kyc(api, reject["token"]))["user"]["kycStatus"] == "VERIFIED"

    officer = await staff_token(api, Role.COMPLIANCE)
    actions = await audit_actions(api, officer, me_id(reject))
    assert ("kyc.decision", "REJECTED") in [(a, o.split(":")[0]) for a, o in actions]
    assert ("kyc.decision", "VERIFIED") in [(a, o.split(":")[0]) for a, o in actions]
    assert ("kyc.submit", "ok") in actions
    review_actions = await audit_actions(api, officer, me_id(review))
    assert any(a == "compliance.case_opened" and o.startswith("KYC_REVIEW") for a, o in
               review_actions)  # fmt: skip


REPLACE = """mutation($id: ID!, $input: ReplaceOrderInput!) { replaceOrder(id: $id, input: $input) {
  order { id } errors { field code } } }"""


async def test_a_rejected_customer_cannot_replace_and_recurring_buys_skip(api: Api) -> None:
    services = services_of(api)
    await list_asset(services, SYMBOL, "10.00")
    _, _, session = await new_user(api, "kycrep")
    token = session["token"]
    user_id = uuid.UUID(me_id(session))
    assert (await deposit(api, token, "100.00"))["errors"] == []
    placed = (await api.gql(PLACE, limit_buy(), token))["data"]["placeOrder"]
    assert placed["errors"] == []
    plan = await services.recurring.create(user_id, SYMBOL, "5", Frequency.DAILY, None)
    # Compliance rejects the identity later (as CLOSE_ACCOUNT does).
    async with services.sessionmaker.begin() as s:
        await services.kyc.set_status(s, user_id, KycStatus.REJECTED)
    replaced = await api.gql(
        REPLACE, {"id": placed["order"]["id"], "input": {"price": "9.00"}}, token
    )
    assert codes(replaced["data"]["replaceOrder"]) == ["KYC_REQUIRED"]
    # The plan's next run is skipped for the same reason (and the customer told why).
    status, order_id, reason = await services.recurring._place(plan, plan.next_run_on)
    assert (status, order_id, reason) == (RunStatus.SKIPPED, None, "KYC_REQUIRED")


async def test_bourse_demo_verifies_the_demo_customer(api: Api, settings: Settings) -> None:
    assert settings.database_url
    assert settings.redis_url
    for _ in range(2):  # idempotent: the second run submits nothing again
        await load_demo(settings, settings.database_url, settings.redis_url)
    token = (await login(api, DEMO_EMAIL, DEMO_PASSWORD))["token"]
    me = await api.gql("{ me { kycStatus taxIdMasked } account { buyingPower } }", token=token)
    assert me["data"]["me"] == {"kycStatus": "VERIFIED", "taxIdMasked": "***-**-2026"}
    assert me["data"]["account"]["buyingPower"] == "10000.00"
    officer = (await login(api, DEMO_COMPLIANCE_EMAIL, DEMO_COMPLIANCE_PASSWORD))["token"]
    assert (await api.gql("{ me { role } }", token=officer))["data"]["me"]["role"] == "COMPLIANCE"
