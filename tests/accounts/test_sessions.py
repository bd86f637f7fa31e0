"""Refresh-token rotation, reuse detection, logout and password change revoking tokens."""

from __future__ import annotations

from typing import Any

from tests.accounts.helpers import (
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    codes,
    error_code,
    login,
    new_user,
)
from tests.support.server import Api

CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { field code message } } }"""


async def refresh(api: Api, token: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.gql(REFRESH, {"t": token}))["data"]["refreshToken"]
    return payload


async def test_refresh_rotates_and_old_refresh_token_stops_working(api: Api) -> None:
    _, _, first = await new_user(api)
    second = await refresh(api, first["refreshToken"])
    assert second["errors"] == []
    assert second["token"] != first["token"]
    assert second["refreshToken"] != first["refreshToken"]
    assert (await api.gql(ME, token=second["token"]))["data"]["me"]["id"] == first["user"]["id"]
    # The rotated-away access token is dead too: one live session per chain.
    assert error_code(await api.gql(ME, token=first["token"])) == "UNAUTHENTICATED"
    # Re-using the old refresh token is refused…
    assert codes(await refresh(api, first["refreshToken"])) == ["INVALID_TOKEN"]


async def test_refresh_token_reuse_revokes_the_whole_family(api: Api) -> None:
    _, _, first = await new_user(api)
    second = await refresh(api, first["refreshToken"])
    # An attacker replays the stolen first token: the legitimate chain is ended as well.
    assert codes(await refresh(api, first["refreshToken"])) == ["INVALID_TOKEN"]
    assert error_code(await api.gql(ME, token=second["token"])) == "UNAUTHENTICATED"
    assert codes(await refresh(api, second["refreshToken"])) == ["INVALID_TOKEN"]


async def test_garbage_refresh_token(api: Api) -> None:
    assert codes(await refresh(api, "garbage")) == ["INVALID_TOKEN"]
    assert codes(await refresh(api, "")) == ["INVALID_TOKEN"]


async def test_logout_revokes_token_and_its_refresh_token_only(api: Api) -> None:
    _, email, phone = await new_user(api)
    laptop = await login(api, email)
    result = await api.gql(LOGOUT, token=phone["token"])
    assert result["data"]["logout"]["errors"] == []
    assert error_code(await api.gql(ME, token=phone["token"])) == "UNAUTHENTICATED"
    assert codes(await refresh(api, phone["refreshToken"])) == ["INVALID_TOKEN"]
    # The other device stays signed in.
    assert (await api.gql(ME, token=laptop["token"]))["data"]["me"] is not None


async def test_logout_without_token_is_unauthenticated(api: Api) -> None:
    assert error_code(await api.gql(LOGOUT)) == "UNAUTHENTICATED"


async def test_change_password_revokes_every_session(api: Api) -> None:
    _, email, phone = await new_user(api)
    laptop = await login(api, email)
    new_password = "Another-Sturdy-77"
    body = await api.gql(
        CHANGE,
        {"input": {"currentPassword": PASSWORD, "newPassword": new_password}},
        token=phone["token"],
    )
    assert body["data"]["changePassword"]["errors"] == []
    for device in (phone, laptop):
        assert error_code(await api.gql(ME, token=device["token"])) == "UNAUTHENTICATED"
        assert codes(await refresh(api, device["refreshToken"])) == ["INVALID_TOKEN"]
    assert codes(await login(api, email)) == ["INVALID_CREDENTIALS"]
    assert (await login(api, email, new_password))["errors"] == []


async def test_change_password_errors(api: Api) -> None:
    _, email, session = await new_user(api)
    wrong = await api.gql(
        CHANGE,
        {"input": {"currentPassword": "Not-The-Pass-1", "newPassword": "Fine-New-Pass-9"}},
        token=session["token"],
    )
    assert [(e["field"], e["code"]) for e in wrong["data"]["changePassword"]["errors"]] == [
        ("currentPassword", "INVALID_CREDENTIALS")
    ]
    weak = await api.gql(
        CHANGE,
        {"input": {"currentPassword": PASSWORD, "newPassword": "short"}},
        token=session["token"],
    )
    assert [(e["field"], e["code"]) for e in weak["data"]["changePassword"]["errors"]] == [
        ("newPassword", "WEAK_PASSWORD")
    ]
    # Nothing changed: the session still works and the old password still signs in.
    assert (await api.gql(ME, token=session["token"]))["data"]["me"] is not None
    assert (await login(api, email))["errors"] == []
    unauth = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Fine-New-Pass-9"}}
    )
    assert error_code(unauth) == "UNAUTHENTICATED"
