"""updateProfile: every field, each error code, nothing saved on error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts.helpers import ME, codes, error_code, new_user
from tests.support.server import Api

UPDATE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  user { username email firstName lastName phoneNumber dateOfBirth address preferredLanguage
         baseCurrency }
  errors { field code message } } }"""


async def update(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = await api.gql(UPDATE, {"input": fields}, token=token)
    payload: dict[str, Any] = body["data"]["updateProfile"]
    return payload


async def test_update_every_field(api: Api) -> None:
    _, _, session = await new_user(api)
    new_username = "renamed_" + session["user"]["id"][:8]
    new_email = f"renamed.{session['user']['id'][:8]}@example.org"
    payload = await update(
        api,
        session["token"],
        username=new_username,
        email=new_email,
        firstName="Ada",
        lastName="Lovelace",
        phoneNumber="+44 20 7946 0958",
        dateOfBirth="1990-12-10",
        address="12 St James's Square, London",
        preferredLanguage="en-GB",
        baseCurrency="gbp",
    )
    assert payload["errors"] == []
    # A new email waits for its confirmation (tests/security/test_sensitive_changes.py).
    assert payload["user"] == {
        "username": new_username,
        "email": session["user"]["email"],
        "firstName": "Ada",
        "lastName": "Lovelace",
        "phoneNumber": "+442079460958",
        "dateOfBirth": "1990-12-10",
        "address": "12 St James's Square, London",
        "preferredLanguage": "en-GB",
        "baseCurrency": "GBP",
    }
    me = (await api.gql(ME, token=session["token"]))["data"]["me"]
    assert me["email"] == session["user"]["email"]
    pending = await api.gql("{ me { pendingEmail } }", token=session["token"])
    assert pending["data"]["me"]["pendingEmail"] == new_email
    assert me["phoneNumber"] == "+442079460958"


async def test_partial_update_keeps_other_fields(api: Api) -> None:
    username, email, session = await new_user(api)
    await update(api, session["token"], firstName="Grace")
    payload = await update(api, session["token"], lastName="Hopper")
    assert payload["user"]["firstName"] == "Grace"
    assert payload["user"]["lastName"] == "Hopper"
    assert payload["user"]["username"] == username
    assert payload["user"]["email"] == email


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "nope"}, [("email", "INVALID_EMAIL")]),
        ({"username": "x"}, [("username", "INVALID_USERNAME")]),
        ({"phoneNumber": "12345"}, [("phoneNumber", "INVALID_PHONE_NUMBER")]),
        ({"dateOfBirth": "2099-01-01"}, [("dateOfBirth", "INVALID_DATE_OF_BIRTH")]),
        ({"dateOfBirth": "2020-01-01"}, [("dateOfBirth", "INVALID_DATE_OF_BIRTH")]),
        ({"preferredLanguage": "klingon!"}, [("preferredLanguage", "INVALID_LANGUAGE")]),
        ({"baseCurrency": "XYZ"}, [("baseCurrency", "UNSUPPORTED_CURRENCY")]),
        ({"firstName": "a" * 101}, [("firstName", "INVALID_INPUT")]),
        (
            {"email": "bad", "baseCurrency": "XYZ"},
            [("email", "INVALID_EMAIL"), ("baseCurrency", "UNSUPPORTED_CURRENCY")],
        ),
    ],
)
async def test_invalid_fields_save_nothing(
    api: Api, fields: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    _, email, session = await new_user(api)
    payload = await update(api, session["token"], **{"lastName": "Not-Saved", **fields})
    assert [(e["field"], e["code"]) for e in payload["errors"]] == expected
    assert payload["user"] is None
    me = (await api.gql(ME, token=session["token"]))["data"]["me"]
    assert me["lastName"] is None
    assert me["firstName"] is None
    assert me["email"] == email


async def test_taken_username_and_email(api: Api) -> None:
    other_name, other_email, _ = await new_user(api)
    _, _, session = await new_user(api)
    assert codes(await update(api, session["token"], username=other_name.upper())) == [
        "USERNAME_TAKEN"
    ]
    assert codes(await update(api, session["token"], email=other_email)) == ["EMAIL_TAKEN"]


async def test_update_needs_a_session(api: Api) -> None:
    assert error_code(await api.gql(UPDATE, {"input": {"firstName": "X"}})) == "UNAUTHENTICATED"
