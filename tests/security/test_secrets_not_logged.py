"""Secrets never reach the logs: the platform's processes run as in production (INFO, JSON
logs to files) through sign-up, identity verification, a wrong guess, two-factor setup, sign-in
with a code, a token refresh, a deposit and a withdrawal, a password reset by email and a
sign-in with a recovery code; then every log is searched for every password, token, reset
token, TOTP secret, recovery code, tax id and bank account number involved."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bourse.settings import Settings
from tests.accounts.helpers import LOGIN, REFRESH, new_user, next_code, submit_kyc
from tests.accounts.test_two_factor import BEGIN, CONFIRM
from tests.funds.helpers import deposit, withdraw
from tests.support.kyc import fresh_ssn
from tests.support.smtp import SmtpServer, text_of
from tests.support.stack import running_stack

RESET_REQUEST = "mutation($e: String!) { requestPasswordReset(email: $e) { errors { code } } }"
RESET = """mutation($input: ResetPasswordInput!) { resetPassword(input: $input) {
  errors { code } } }"""
TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


async def test_no_secret_appears_in_any_log(
    settings: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    secrets: dict[str, str] = {}
    async with (
        running_stack(settings, shards=1, liquidity=False, jobs=True, log_dir=tmp_path) as stack,
        stack.client() as api,
    ):
        _, email, session = await new_user(api, "logs", verified=False)
        secrets |= {"password": "Sturdy-Pass-42", "access token": session["token"],
                    "refresh token": session["refreshToken"]}  # fmt: skip
        tax_id = fresh_ssn()
        secrets |= {"tax id": tax_id, "tax id digits": tax_id.replace("-", "")}
        kyc = await submit_kyc(api, session["token"], tax_id=tax_id)
        assert kyc["user"]["kycStatus"] == "VERIFIED"
        wrong = "Not-My-Password-314"
        secrets["wrong guess"] = wrong
        guessed = await api.gql(LOGIN, {"input": {"email": email, "password": wrong}})
        assert guessed["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"

        begun = (await api.gql(BEGIN, token=session["token"]))["data"]["beginTwoFactorSetup"]
        secrets["totp secret"] = begun["secret"]
        confirmed = await api.gql(
            CONFIRM, {"otp": await next_code(begun["secret"])}, token=session["token"]
        )
        recovery = confirmed["data"]["confirmTwoFactor"]["recoveryCodes"]
        secrets |= {f"recovery code {i}": code for i, code in enumerate(recovery)}

        signed = await api.gql(
            LOGIN,
            {"input": {"email": email, "password": "Sturdy-Pass-42",
                       "otp": await next_code(begun["secret"])}},
        )  # fmt: skip
        tokens = signed["data"]["login"]
        renewed = (await api.gql(REFRESH, {"t": tokens["refreshToken"]}))["data"]["refreshToken"]
        secrets |= {"second access token": tokens["token"],
                    "rotated refresh token": tokens["refreshToken"],
                    "refreshed refresh token": renewed["refreshToken"]}  # fmt: skip
        account_number = "7730021958"
        secrets["bank account"] = account_number
        bank = f"ach:021000021:{account_number}"
        assert (await deposit(api, renewed["token"], "25.00", method=bank))["errors"] == []
        assert (await withdraw(api, renewed["token"], "5.00", method=bank))["errors"] == []

        assert (await api.gql(RESET_REQUEST, {"e": email}))["data"]
        mail = await smtp.inbox.wait_for_subject(email, "Reset your Bourse password")
        token = TOKEN_LINE.search(text_of(mail))
        assert token
        secrets["reset token"] = token.group(1)
        secrets["new password"] = "Brand-New-Pass-2718"
        reset = await api.gql(
            RESET, {"input": {"token": token.group(1), "newPassword": "Brand-New-Pass-2718"}}
        )
        assert reset["data"]["resetPassword"]["errors"] == []
        last = await api.gql(
            LOGIN,
            {"input": {"email": email, "password": "Brand-New-Pass-2718", "otp": recovery[0]}},
        )
        assert last["data"]["login"]["errors"] == []
        await asyncio.sleep(0.5)  # let the last log lines land

    logs = {path.name: path.read_text() for path in tmp_path.glob("*.log")}
    assert '"event": "request"' in logs["api.log"], "the API logged nothing: the check is empty"
    assert "email sent" in logs["jobs.log"], "the job worker logged nothing"
    leaks = [
        f"{what} in {name}"
        for what, value in secrets.items()
        for name, text in logs.items()
        if value and value in text
    ]
    assert leaks == []
