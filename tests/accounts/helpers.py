"""GraphQL documents and small helpers for the accounts tests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pyotp

from tests.support.kyc import fresh_ssn
from tests.support.server import Api

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
  user { id username email role createdAt twoFactorEnabled kycStatus }
  errors { field code message } } }"""
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
  token refreshToken twoFactorRequired user { id email } errors { field code message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  token refreshToken user { id } errors { field code message } } }"""
ME = """{ me { id username email role twoFactorEnabled firstName lastName phoneNumber
  dateOfBirth address preferredLanguage baseCurrency kycStatus createdAt } }"""
LOGOUT = "mutation { logout { errors { code } } }"
PASSWORD = "Sturdy-Pass-42"


def unique(tag: str = "u") -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"{tag}{suffix}", f"{tag}.{suffix}@example.com"


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


def error_code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def register(api: Api, username: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    body = await api.gql(
        REGISTER, {"input": {"username": username, "email": email, "password": password}}
    )
    payload: dict[str, Any] = body["data"]["register"]
    return payload


async def login(
    api: Api, email: str, password: str = PASSWORD, otp: str | None = None
) -> dict[str, Any]:
    body = await api.gql(LOGIN, {"input": {"email": email, "password": password, "otp": otp}})
    payload: dict[str, Any] = body["data"]["login"]
    return payload


SUBMIT_KYC = """mutation($input: SubmitKycInput!) { submitKyc(input: $input) {
  user { id kycStatus taxIdMasked } errors { field code message } } }"""


def kyc_input(
    first: str = "Test", last: str = "Customer", tax_id: str | None = None
) -> dict[str, Any]:
    return {
        "legalFirstName": first,
        "legalLastName": last,
        "dateOfBirth": "1985-06-15",
        "address": {"line1": "1 Test Street", "line2": None, "city": "Springfield",
                    "region": "IL", "postalCode": "62701", "country": "US"},
        "taxId": tax_id or fresh_ssn(),
        "citizenship": "US",
    }  # fmt: skip


async def submit_kyc(api: Api, token: str, **kwargs: Any) -> dict[str, Any]:
    body = await api.gql(SUBMIT_KYC, {"input": kyc_input(**kwargs)}, token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["submitKyc"]
    return payload


async def verify_identity(api: Api, token: str) -> None:
    """The KYC step every customer takes before trading or withdrawing: the sandbox
    provider verifies a well-formed submission at once."""
    done = await submit_kyc(api, token)
    assert done["errors"] == [], done
    assert done["user"]["kycStatus"] == "VERIFIED", done


async def new_user(
    api: Api, tag: str = "u", *, verified: bool = True
) -> tuple[str, str, dict[str, Any]]:
    """Register and sign in (and, unless `verified=False`, pass KYC); returns (username,
    email, login payload)."""
    username, email = unique(tag)
    assert (await register(api, username, email))["errors"] == []
    signed_in = await login(api, email)
    assert signed_in["errors"] == []
    if verified:
        await verify_identity(api, signed_in["token"])
    return username, email, signed_in


_last_step: dict[str, int] = {}


async def next_code(secret: str) -> str:
    """The code an authenticator app shows, as a user who has just used one gets it: the
    platform accepts each time step's code once (and one step of drift either way), so a
    second sign-in within the same 30 s uses the next step's code, and a third waits for
    the clock to reach it."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.now(UTC))
    last = _last_step.get(secret)
    if last is not None and step <= last:
        step = last + 1
        while step > totp.timecode(datetime.now(UTC)) + 1:  # beyond the accepted drift
            await asyncio.sleep(0.2)
    _last_step[secret] = step
    return totp.generate_otp(step)
