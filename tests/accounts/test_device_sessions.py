"""Signed-in devices: `sessions` lists each sign-in once (refreshes keep its id), named from
its User-Agent; `revokeSession` signs one device out at once and no one else's."""

from __future__ import annotations

from typing import Any

from tests.accounts.helpers import LOGIN, PASSWORD, REFRESH, new_user
from tests.support.server import Api

SESSIONS = "{ sessions { id device ip createdAt lastSeenAt current } }"
REVOKE = "mutation($id: ID!) { revokeSession(id: $id) { errors { code field } } }"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


async def sign_in(api: Api, email: str, agent: str) -> dict[str, Any]:
    response = await api.http.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"input": {"email": email, "password": PASSWORD}}},
        headers={"User-Agent": agent},
    )
    payload: dict[str, Any] = response.json()["data"]["login"]
    assert payload["errors"] == []
    return payload


async def test_each_device_is_listed_once_and_can_be_signed_out(api: Api) -> None:
    _, email, first = await new_user(api, "dev")
    laptop = await sign_in(api, email, FIREFOX)
    phone = await sign_in(api, email, IPHONE)
    response = await api.http.post(
        "/graphql",
        json={"query": REFRESH, "variables": {"t": phone["refreshToken"]}},
        headers={"User-Agent": IPHONE},
    )
    renewed = response.json()["data"]["refreshToken"]

    sessions = (await api.gql(SESSIONS, token=laptop["token"]))["data"]["sessions"]
    assert len(sessions) == 3  # the refresh did not add one
    devices = {s["device"] for s in sessions}
    assert {"Firefox on Linux", "Safari on iPhone"} <= devices
    assert [s["device"] for s in sessions if s["current"]] == ["Firefox on Linux"]
    assert all(s["ip"] == "127.0.0.1" for s in sessions)
    phone_id = next(s["id"] for s in sessions if s["device"] == "Safari on iPhone")

    assert (await api.gql(REVOKE, {"id": phone_id}, laptop["token"]))["data"]["revokeSession"] == {
        "errors": []
    }
    cut = await api.gql("{ me { id } }", token=renewed["token"])
    assert cut["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    refused = (await api.gql(REFRESH, {"t": renewed["refreshToken"]}))["data"]["refreshToken"]
    assert refused["errors"][0]["code"] == "INVALID_TOKEN"
    left = (await api.gql(SESSIONS, token=laptop["token"]))["data"]["sessions"]
    assert phone_id not in {s["id"] for s in left}
    assert (await api.gql("{ me { id } }", token=first["token"]))["data"]["me"]


async def test_another_users_session_cannot_be_revoked(api: Api) -> None:
    _, _, alice = await new_user(api, "deva")
    _, _, bob = await new_user(api, "devb")
    bobs = (await api.gql(SESSIONS, token=bob["token"]))["data"]["sessions"][0]["id"]
    for target in (bobs, "not-a-session"):
        body = await api.gql(REVOKE, {"id": target}, alice["token"])
        assert body["data"]["revokeSession"]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    assert (await api.gql("{ me { id } }", token=bob["token"]))["data"]["me"]
