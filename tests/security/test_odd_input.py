"""Strings no client should send are input errors, never internal errors: a lone surrogate
(valid JSON escape, not a character) in variables or in a GraphQL string literal."""

from __future__ import annotations

from tests.accounts.helpers import new_user
from tests.support.server import Api

REGISTER_VARIABLES = (
    '{"query": "mutation($u: String!) { register(input: {username: $u, '
    'email: \\"lone@example.com\\", password: \\"Sturdy-Pass-42\\"}) { errors { code } } }", '
    '"variables": {"u": "ab\\ud800cd"}}'
)
REGISTER_LITERAL = (
    '{"query": "mutation { register(input: {username: \\"ab\\\\ud800cd\\", '
    'email: \\"lone2@example.com\\", password: \\"Sturdy-Pass-42\\"}) { errors { code } } }"}'
)


async def post_raw(api: Api, body: str, token: str | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await api.http.post("/graphql", content=body.encode(), headers=headers)
    assert response.status_code in (200, 400), response.text
    result: dict[str, object] = response.json()
    return result


def codes_of(body: dict[str, object]) -> list[str]:
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("register"), dict):
        return [e["code"] for e in data["register"]["errors"]]
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return [str(e.get("extensions", {}).get("code", e["message"])) for e in errors]


async def test_a_lone_surrogate_is_an_input_error(api: Api) -> None:
    for body in (REGISTER_VARIABLES, REGISTER_LITERAL):
        found = codes_of(await post_raw(api, body))
        assert found, body
        assert "INTERNAL_SERVER_ERROR" not in found
        assert not any("Internal server error" in c for c in found), found


async def test_a_lone_surrogate_in_an_order_is_refused(api: Api) -> None:
    _, _, session = await new_user(api, "sur")
    body = (
        '{"query": "mutation($c: String) { placeOrder(input: {assetId: \\"AAPL\\", '
        'orderType: BUY, orderSubType: LIMIT, quantity: \\"1\\", price: \\"1.00\\", '
        'clientOrderId: $c}) { order { id } errors { code field } } }", '
        '"variables": {"c": "x\\udfffy"}}'
    )
    result = await post_raw(api, body, session["token"])
    assert "Internal server error" not in str(result), result


async def test_a_lone_surrogate_in_free_text_is_refused_and_nothing_is_saved(api: Api) -> None:
    _, _, session = await new_user(api, "surt")
    body = (
        '{"query": "mutation($f: String) { updateProfile(input: {firstName: $f, '
        'lastName: \\"Kept\\"}) { user { firstName } errors { code field } } }", '
        '"variables": {"f": "Ad\\ud800a"}}'
    )
    result = await post_raw(api, body, session["token"])
    payload = result["data"]["updateProfile"]  # type: ignore[index]
    assert payload["errors"] == [{"code": "INVALID_INPUT", "field": "firstName"}], result
    me = await api.gql("{ me { firstName lastName } }", token=session["token"])
    assert me["data"]["me"] == {"firstName": None, "lastName": None}
