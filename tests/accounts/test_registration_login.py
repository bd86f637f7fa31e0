"""register, login (throttling and lockout), me, over HTTP and websockets."""

from __future__ import annotations

import asyncio

import pytest

from tests.accounts.helpers import (
    LOGIN,
    ME,
    PASSWORD,
    codes,
    error_code,
    login,
    new_user,
    register,
    unique,
)
from tests.support.server import Api


async def test_register_returns_customer(api: Api) -> None:
    username, email = unique()
    payload = await register(api, username, email)
    assert payload["errors"] == []
    user = payload["user"]
    assert user["username"] == username
    assert user["email"] == email
    assert user["role"] == "CUSTOMER"
    assert user["twoFactorEnabled"] is False
    assert user["kycStatus"] == "NOT_SUBMITTED"  # until submitKyc
    assert user["createdAt"].endswith("+00:00")


async def test_register_rejects_taken_username_and_email_case_insensitively(api: Api) -> None:
    username, email = unique()
    assert (await register(api, username, email))["errors"] == []
    _, other_email = unique()
    taken_name = await register(api, username.upper(), other_email)
    assert codes(taken_name) == ["USERNAME_TAKEN"]
    assert taken_name["user"] is None
    other_name, _ = unique()
    taken_email = await register(api, other_name, email.upper())
    assert codes(taken_email) == ["EMAIL_TAKEN"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("email", "not-an-email", "INVALID_EMAIL"),
        ("email", "a@b", "INVALID_EMAIL"),
        ("password", "short1!", "WEAK_PASSWORD"),
        ("password", "onlyletterslong", "WEAK_PASSWORD"),
        ("password", "password123", "WEAK_PASSWORD"),
        ("password", "x" * 200 + "1", "WEAK_PASSWORD"),
        ("username", "a", "INVALID_USERNAME"),
        ("username", "bad name!", "INVALID_USERNAME"),
    ],
)
async def test_register_validation_codes(api: Api, field: str, value: str, code: str) -> None:
    username, email = unique()
    fields = {"username": username, "email": email, "password": PASSWORD, field: value}
    payload = await register(api, fields["username"], fields["email"], fields["password"])
    assert payload["user"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)]
    # Nothing was created: the valid email can still register.
    if field != "email":
        assert (await register(api, *unique()))["errors"] == []


async def test_concurrent_registrations_with_one_email_create_one_user(api: Api) -> None:
    _, email = unique()
    results = await asyncio.gather(*(register(api, unique()[0], email) for _ in range(6)))
    winners = [r for r in results if r["errors"] == []]
    assert len(winners) == 1
    assert all(codes(r) == ["EMAIL_TAKEN"] for r in results if r["errors"])


async def test_login_and_me(api: Api) -> None:
    username, email, signed_in = await new_user(api)
    assert signed_in["token"]
    assert signed_in["refreshToken"]
    assert signed_in["twoFactorRequired"] is False
    me = (await api.gql(ME, token=signed_in["token"]))["data"]["me"]
    assert me["username"] == username
    assert me["email"] == email
    assert me["role"] == "CUSTOMER"
    assert me["preferredLanguage"] == "en"
    assert me["baseCurrency"] == "USD"
    assert me["id"] == signed_in["user"]["id"]


async def test_login_email_is_case_insensitive(api: Api) -> None:
    _, email, _ = await new_user(api)
    assert (await login(api, email.upper()))["errors"] == []


async def test_login_wrong_password_and_unknown_email_look_alike(api: Api) -> None:
    _, email, _ = await new_user(api)
    wrong = await login(api, email, "Wrong-Pass-99")
    unknown = await login(api, unique()[1])
    assert codes(wrong) == codes(unknown) == ["INVALID_CREDENTIALS"]
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert wrong["token"] is None


async def test_login_with_a_nul_byte_in_the_email_is_just_wrong_credentials(api: Api) -> None:
    # PostgreSQL text cannot hold NUL: the address must never reach the query (the fuzzer
    # found this as an internal error).
    assert codes(await login(api, "a\x00b@example.com")) == ["INVALID_CREDENTIALS"]


async def test_me_without_or_with_bad_token_is_unauthenticated(api: Api) -> None:
    assert error_code(await api.gql(ME)) == "UNAUTHENTICATED"
    body = await api.gql(ME, token="not-a-real-token")
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["data"]["me"] is None


async def test_repeated_failures_lock_the_account_then_cool_down(api: Api) -> None:
    _, email, _ = await new_user(api)
    for _ in range(5):
        assert codes(await login(api, email, "Wrong-Pass-99")) == ["INVALID_CREDENTIALS"]
    # Locked: even the right password is refused during the cool-down (2 s in tests).
    assert codes(await login(api, email)) == ["ACCOUNT_LOCKED"]
    await asyncio.sleep(2.2)
    assert (await login(api, email))["errors"] == []


async def test_lockout_of_one_account_does_not_lock_another(api: Api) -> None:
    _, locked_email, _ = await new_user(api)
    _, other_email, _ = await new_user(api)
    for _ in range(5):
        await login(api, locked_email, "Wrong-Pass-99")
    assert codes(await login(api, locked_email)) == ["ACCOUNT_LOCKED"]
    assert (await login(api, other_email))["errors"] == []


async def test_me_over_websocket_with_token_in_connection_init(api: Api) -> None:
    username, _, signed_in = await new_user(api)
    token = signed_in["token"]
    async with api.ws({"Authorization": f"Bearer {token}"}) as ws:
        result = await api.ws_execute(ws, ME)
    assert result["data"]["me"]["username"] == username
    async with api.ws({"token": token}) as ws:
        result = await api.ws_execute(ws, ME)
    assert result["data"]["me"]["username"] == username


async def test_me_over_websocket_without_token_is_unauthenticated(api: Api) -> None:
    async with api.ws() as ws:
        result = await api.ws_execute(ws, ME)
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_login_mutation_over_websocket(api: Api) -> None:
    _, email, _ = await new_user(api)
    async with api.ws() as ws:
        result = await api.ws_execute(ws, LOGIN, {"input": {"email": email, "password": PASSWORD}})
    assert result["data"]["login"]["errors"] == []
    assert result["data"]["login"]["token"]
