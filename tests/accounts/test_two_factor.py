"""TOTP two-factor sign-in with single-use recovery codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from tests.accounts.helpers import ME, codes, login, new_user, next_code
from tests.support.server import Api

BEGIN = "mutation { beginTwoFactorSetup { secret otpauthUri errors { code } } }"
CONFIRM = (
    "mutation($otp: String!) { confirmTwoFactor(otp: $otp) { recoveryCodes errors { code } } }"
)
DISABLE = "mutation($otp: String!) { disableTwoFactor(otp: $otp) { errors { code } } }"


def wrong_code(secret: str) -> str:
    """A six-digit code that is not valid in any accepted time step right now."""
    totp = pyotp.TOTP(secret)
    now = datetime.now(UTC)
    valid = {totp.at(now + timedelta(seconds=30 * step)) for step in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def enable(api: Api, token: str) -> tuple[str, list[str]]:
    begun = (await api.gql(BEGIN, token=token))["data"]["beginTwoFactorSetup"]
    assert begun["errors"] == []
    secret = begun["secret"]
    confirmed = (await api.gql(CONFIRM, {"otp": await next_code(secret)}, token=token))["data"][
        "confirmTwoFactor"
    ]
    assert confirmed["errors"] == []
    recovery: list[str] = confirmed["recoveryCodes"]
    return secret, recovery


async def test_setup_returns_secret_and_provisioning_uri(api: Api) -> None:
    _, _, session = await new_user(api)
    begun = (await api.gql(BEGIN, token=session["token"]))["data"]["beginTwoFactorSetup"]
    assert begun["otpauthUri"].startswith("otpauth://totp/Bourse:")
    assert f"secret={begun['secret']}" in begun["otpauthUri"]
    # Not enabled until confirmed.
    assert (await api.gql(ME, token=session["token"]))["data"]["me"]["twoFactorEnabled"] is False
    bad = await api.gql(CONFIRM, {"otp": wrong_code(begun["secret"])}, token=session["token"])
    assert codes(bad["data"]["confirmTwoFactor"]) == ["INVALID_OTP"]


async def test_confirm_without_setup(api: Api) -> None:
    _, _, session = await new_user(api)
    body = await api.gql(CONFIRM, {"otp": "123456"}, token=session["token"])
    assert codes(body["data"]["confirmTwoFactor"]) == ["TWO_FACTOR_NOT_STARTED"]


async def test_login_requires_otp_once_enabled(api: Api) -> None:
    _, email, session = await new_user(api)
    secret, recovery = await enable(api, session["token"])
    assert len(recovery) == 10
    assert len(set(recovery)) == 10
    me = (await api.gql(ME, token=session["token"]))["data"]["me"]
    assert me["twoFactorEnabled"] is True

    missing = await login(api, email)
    assert missing["twoFactorRequired"] is True
    assert codes(missing) == ["OTP_REQUIRED"]
    assert missing["token"] is None

    wrong = await login(api, email, otp=wrong_code(secret))
    assert wrong["twoFactorRequired"] is True
    assert codes(wrong) == ["INVALID_OTP"]
    assert wrong["token"] is None

    ok = await login(api, email, otp=await next_code(secret))
    assert ok["errors"] == []
    assert ok["token"]


async def test_recovery_code_works_exactly_once(api: Api) -> None:
    _, email, session = await new_user(api)
    _, recovery = await enable(api, session["token"])
    first = await login(api, email, otp=recovery[0])
    assert first["errors"] == []
    again = await login(api, email, otp=recovery[0])
    assert codes(again) == ["INVALID_OTP"]
    # Other codes still work; formatting (case, spaces) is forgiven.
    assert (await login(api, email, otp=f" {recovery[1].upper()} "))["errors"] == []


async def test_setup_twice_and_disable(api: Api) -> None:
    _, email, session = await new_user(api)
    secret, _ = await enable(api, session["token"])
    again = await api.gql(BEGIN, token=session["token"])
    assert codes(again["data"]["beginTwoFactorSetup"]) == ["TWO_FACTOR_ALREADY_ENABLED"]
    bad = await api.gql(DISABLE, {"otp": wrong_code(secret)}, token=session["token"])
    assert codes(bad["data"]["disableTwoFactor"]) == ["INVALID_OTP"]
    ok = await api.gql(DISABLE, {"otp": await next_code(secret)}, token=session["token"])
    assert ok["data"]["disableTwoFactor"]["errors"] == []
    assert (await login(api, email))["errors"] == []
    off = await api.gql(DISABLE, {"otp": "123456"}, token=session["token"])
    assert codes(off["data"]["disableTwoFactor"]) == ["TWO_FACTOR_NOT_ENABLED"]


async def test_two_factor_mutations_need_a_session(api: Api) -> None:
    body: dict[str, Any] = await api.gql(BEGIN)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_totp_code_works_once(api: Api) -> None:
    """RFC 6238 5.2: a code seen once is refused the second time, even inside its window,
    and of five sign-ins racing with one code exactly one gets in."""
    _, email, session = await new_user(api)
    secret, _ = await enable(api, session["token"])
    code = await next_code(secret)
    results = await asyncio.gather(*(login(api, email, otp=code) for _ in range(5)))
    assert sorted(bool(r["token"]) for r in results) == [False, False, False, False, True]
    replayed = await login(api, email, otp=code)
    assert codes(replayed) == ["INVALID_OTP"]
    assert replayed["token"] is None
    # The code that confirmed the setup cannot sign in either.
    _, other_email, other = await new_user(api)
    begun = (await api.gql(BEGIN, token=other["token"]))["data"]["beginTwoFactorSetup"]
    confirming = pyotp.TOTP(begun["secret"]).now()
    confirmed = await api.gql(CONFIRM, {"otp": confirming}, token=other["token"])
    assert confirmed["data"]["confirmTwoFactor"]["errors"] == []
    assert codes(await login(api, other_email, otp=confirming)) == ["INVALID_OTP"]
