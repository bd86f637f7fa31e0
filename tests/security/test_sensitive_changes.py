"""A stolen access token is not the account (issue 17): changing the email, turning on
two-factor sign-in and withdrawing to a new method need a fresh proof (the current password,
unless the session signed in with it in the last few minutes); a new email takes effect only
when its owner confirms it, and the old address is told."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import ME, PASSWORD, codes, login, new_user, unique
from tests.accounts.test_two_factor import BEGIN, DISABLE, enable, wrong_code
from tests.funds.helpers import WITHDRAW, cash, deposit, key, withdraw
from tests.support.server import Api, running_api
from tests.support.smtp import SmtpServer, text_of

UPDATE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  user { email pendingEmail } errors { field code } } }"""
CONFIRM_EMAIL = """mutation($t: String!) { confirmEmailChange(token: $t) {
  user { email pendingEmail } errors { field code } } }"""
BEGIN_WITH_PASSWORD = """mutation($p: String) { beginTwoFactorSetup(currentPassword: $p) {
  secret errors { field code } } }"""
TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


@pytest.fixture(scope="module")
async def stale(settings: Settings, worker: None) -> AsyncIterator[Api]:
    """Every session here counts as signed in long ago: only the password is fresh proof."""
    async with running_api(settings.model_copy(update={"reauth_window_seconds": 0})) as api:
        yield api


async def mailed_token(smtp: SmtpServer, address: str) -> str:
    message = await smtp.inbox.wait_for_subject(address, "Confirm your new Bourse email")
    match = TOKEN_LINE.search(text_of(message))
    assert match, text_of(message)
    return match.group(1)


async def update(api: Api, token: str, **fields: object) -> dict[str, object]:
    body = await api.gql(UPDATE, {"input": fields}, token=token)
    payload: dict[str, object] = body["data"]["updateProfile"]
    return payload


async def test_a_new_email_is_confirmed_by_its_owner_and_the_old_one_is_told(
    api: Api, smtp: SmtpServer
) -> None:
    _, old_email, session = await new_user(api, "mv")
    new_email = unique("mvnew")[1]
    payload = await update(api, session["token"], email=new_email)  # a fresh sign-in: proof
    assert payload["errors"] == []
    assert payload["user"] == {"email": old_email, "pendingEmail": new_email}

    notice = await smtp.inbox.wait_for_subject(old_email, "is being changed")
    assert new_email in text_of(notice)
    token = await mailed_token(smtp, new_email)
    assert TOKEN_LINE.search(text_of(notice)) is None  # the old address gets no token

    assert codes((await api.gql(CONFIRM_EMAIL, {"t": "x" * 43}))["data"]["confirmEmailChange"]) == [
        "INVALID_TOKEN"
    ]
    confirmed = (await api.gql(CONFIRM_EMAIL, {"t": token}))["data"]["confirmEmailChange"]
    assert confirmed == {"user": {"email": new_email, "pendingEmail": None}, "errors": []}
    assert codes((await api.gql(CONFIRM_EMAIL, {"t": token}))["data"]["confirmEmailChange"]) == [
        "INVALID_TOKEN"
    ]  # single use
    assert (await login(api, new_email))["errors"] == []
    assert codes(await login(api, old_email)) == ["INVALID_CREDENTIALS"]
    changed = await smtp.inbox.wait_for_subject(old_email, "has changed")
    assert new_email in text_of(changed)


async def test_a_stale_session_cannot_change_the_email_without_the_password(
    stale: Api, smtp: SmtpServer
) -> None:
    _, email, session = await new_user(stale, "st")
    thief = unique("thief")[1]
    refused = await update(stale, session["token"], email=thief, firstName="Mallory")
    assert codes(refused) == ["REAUTHENTICATION_REQUIRED"]
    wrong = await update(stale, session["token"], email=thief, currentPassword="Guess-123-x")
    assert codes(wrong) == ["INVALID_CREDENTIALS"]
    me = (await stale.gql(ME, token=session["token"]))["data"]["me"]
    assert me["email"] == email
    assert me["firstName"] is None  # nothing of the refused change was saved
    assert smtp.inbox.to(thief) == []

    proved = await update(stale, session["token"], email=thief, currentPassword=PASSWORD)
    assert proved["errors"] == []
    assert proved["user"] == {"email": email, "pendingEmail": thief}


async def test_guessing_the_password_through_a_sensitive_change_locks_the_account(
    stale: Api, settings: Settings
) -> None:
    _, _, session = await new_user(stale, "gs")
    found = []
    for _ in range(settings.login_max_failures + 2):
        payload = await update(
            stale, session["token"], email=unique("g")[1], currentPassword="Wrong-Pass-99"
        )
        found += codes(payload)
    assert found[-1] == "ACCOUNT_LOCKED"
    assert found.count("INVALID_CREDENTIALS") == settings.login_max_failures


async def test_two_factor_setup_needs_a_fresh_proof(stale: Api) -> None:
    _, _, session = await new_user(stale, "tf")
    refused = (await stale.gql(BEGIN, token=session["token"]))["data"]["beginTwoFactorSetup"]
    assert codes(refused) == ["REAUTHENTICATION_REQUIRED"]
    begun = await stale.gql(BEGIN_WITH_PASSWORD, {"p": PASSWORD}, token=session["token"])
    assert begun["data"]["beginTwoFactorSetup"]["errors"] == []
    assert begun["data"]["beginTwoFactorSetup"]["secret"]


async def test_wrong_codes_to_disable_two_factor_are_throttled(
    api: Api, settings: Settings
) -> None:
    _, _, session = await new_user(api, "dis")
    secret, _ = await enable(api, session["token"])
    found = []
    for _ in range(settings.login_max_failures + 1):
        body = await api.gql(DISABLE, {"otp": wrong_code(secret)}, token=session["token"])
        found += codes(body["data"]["disableTwoFactor"])
    assert found[-1] == "ACCOUNT_LOCKED"
    assert "INVALID_OTP" in found


async def test_a_withdrawal_to_a_new_method_needs_a_fresh_proof(stale: Api) -> None:
    _, _, session = await new_user(stale, "wd")
    token = session["token"]
    assert (await deposit(stale, token, "100.00", method="sandbox:bank"))["errors"] == []
    # The method the money came from is known: no proof needed.
    assert (await withdraw(stale, token, "10.00", method="sandbox:bank"))["errors"] == []

    body = await stale.gql(
        WITHDRAW,
        {"input": {"amount": "50.00", "currency": "USD", "withdrawalMethod": "sandbox:elsewhere",
                   "idempotencyKey": key()}},
        token,
    )  # fmt: skip
    assert codes(body["data"]["withdraw"]) == ["REAUTHENTICATION_REQUIRED"]
    assert (await cash(stale, token))["available"] == Decimal("90.00")  # nothing moved

    proved = await stale.gql(
        WITHDRAW,
        {"input": {"amount": "50.00", "currency": "USD", "withdrawalMethod": "sandbox:elsewhere",
                   "idempotencyKey": key(), "currentPassword": PASSWORD}},
        token,
    )  # fmt: skip
    assert proved["data"]["withdraw"]["errors"] == []
    assert (await cash(stale, token))["available"] == Decimal("40.00")
