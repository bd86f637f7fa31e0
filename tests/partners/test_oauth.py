"""OAuth2 for partner apps: client credentials act for nobody; the authorization code with PKCE
needs the customer's consent, and then reaches only that customer's data within the approved
scopes; codes are single use; revoking the consent stops the app at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.services import Services
from tests.accounts.helpers import codes, new_user
from tests.partners.helpers import (
    AUTHORIZATION,
    CONNECTED,
    DEPOSIT,
    ME,
    PLACE,
    REVOKE_APP,
    admin_token,
    authorize_input,
    basic,
    consent,
    create_app,
    exchange,
    gql_code,
    pkce,
    token_request,
)
from tests.support.server import Api

ORDERS = "{ orders(first: 5) { edges { node { id } } } }"
TRANSACTIONS = "{ transactions(first: 5) { edges { node { id } } } }"
ASSETS = "{ assets(first: 3) { edges { node { symbol } } } }"


@pytest.fixture(scope="module")
async def app(api: Api) -> dict[str, Any]:
    assert api.app is not None
    services: Services = api.app.state.services
    admin = await admin_token(api, services)
    return await create_app(api, admin, ["READ_MARKET", "READ_ACCOUNT", "TRADE"])


async def test_only_admin_registers_apps(api: Api) -> None:
    _, _, customer = await new_user(api, "oa")
    body = await api.gql(
        'mutation { createPartnerApp(input: {name: "x", redirectUris: [], scopes: [TRADE]})'
        " { errors { code } } }",
        token=customer["token"],
    )
    assert gql_code(body) == "FORBIDDEN"


async def test_client_credentials_read_the_market_and_no_customer(
    api: Api, app: dict[str, Any]
) -> None:
    client_id, secret = app["app"]["clientId"], app["clientSecret"]
    status, body = await token_request(api, {"grant_type": "client_credentials"},
                                       basic(client_id, secret))  # fmt: skip
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read:market"
    token = body["access_token"]
    assert gql_code(await api.gql(ASSETS, token=token)) is None
    assert gql_code(await api.gql(ME, token=token)) == "UNAUTHENTICATED"

    status, body = await token_request(
        api, {"grant_type": "client_credentials", "client_id": client_id,
              "client_secret": "wrong"},
    )  # fmt: skip
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await token_request(
        api, {"grant_type": "client_credentials", "scope": "trade"}, basic(client_id, secret)
    )
    assert (status, body["error"]) == (400, "invalid_scope")
    status, body = await token_request(api, {"grant_type": "password"}, basic(client_id, secret))
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_the_consent_screen_names_the_app_and_refuses_bad_requests(
    api: Api, app: dict[str, Any]
) -> None:
    _, _, customer = await new_user(api, "ob")
    _, challenge = pkce()
    good = authorize_input(app["app"]["clientId"], challenge, "read:accounts trade")
    found = (await api.gql(AUTHORIZATION, {"i": good}, customer["token"]))["data"]
    assert found["oauthAuthorization"] == {
        "appName": "Robo Advisor", "scopes": ["READ_ACCOUNT", "TRADE"], "errors": []
    }  # fmt: skip
    cases = {
        "INVALID_REDIRECT_URI": {**good, "redirectUri": "https://evil.example/cb"},
        "NOT_FOUND": {**good, "clientId": "bpa_unknown"},
        "INVALID_SCOPE": {**good, "scope": "funds"},
        "INVALID_INPUT": {**good, "codeChallengeMethod": "plain"},
    }
    for code, request in cases.items():
        answer = (await api.gql(AUTHORIZATION, {"i": request}, customer["token"]))["data"]
        assert codes(answer["oauthAuthorization"]) == [code], code
    # Signed out, nobody can answer for the customer.
    assert gql_code(await api.gql(AUTHORIZATION, {"i": good})) == "UNAUTHENTICATED"


async def test_a_partner_reaches_only_the_consenting_customer_within_its_scopes(
    api: Api, app: dict[str, Any]
) -> None:
    _, _, alice = await new_user(api, "oc")
    _, _, bob = await new_user(api, "od")
    code, verifier = await consent(api, alice["token"], app, "read:accounts")
    status, body = await exchange(api, app, code, verifier)
    assert status == 200, body
    assert body["scope"] == "read:accounts"
    token = body["access_token"]

    me = await api.gql(ME, token=token)
    assert me["data"]["me"]["id"] == alice["user"]["id"]  # Alice, never Bob
    assert gql_code(await api.gql(ORDERS, token=token)) is None
    # Bob's money movements are not Alice's: the partner sees Alice's (none), Bob sees his.
    deposit = {"amount": "50", "currency": "USD", "paymentMethod": "bank",
               "idempotencyKey": f"bob-{bob['user']['id']}"}  # fmt: skip
    booked = await api.gql(DEPOSIT, {"i": deposit}, bob["token"])
    assert booked["data"]["deposit"]["errors"] == [], booked
    txn_id = booked["data"]["deposit"]["transaction"]["id"]
    assert (await api.gql(TRANSACTIONS, token=token))["data"]["transactions"]["edges"] == []
    mine = (await api.gql(TRANSACTIONS, token=bob["token"]))["data"]["transactions"]["edges"]
    assert [e["node"]["id"] for e in mine] == [txn_id]
    # Within its scopes only: no trading.
    refused = await api.gql(
        PLACE,
        {"i": {"assetId": "NOPE", "orderType": "BUY", "orderSubType": "MARKET", "quantity": "1"}},
        token,
    )
    assert gql_code(refused) == "FORBIDDEN"

    # The code was single use; a wrong verifier fails too.
    status, again = await exchange(api, app, code, verifier)
    assert (status, again["error"]) == (400, "invalid_grant")
    code2, _ = await consent(api, alice["token"], app, "read:accounts")
    status, wrong = await exchange(api, app, code2, pkce()[0])
    assert (status, wrong["error"]) == (400, "invalid_grant")

    # Alice sees the app among her connected apps; Bob does not. Revoking stops the token.
    listed = (await api.gql(CONNECTED, token=alice["token"]))["data"]["connectedApps"]
    assert [c["appName"] for c in listed] == ["Robo Advisor"]
    assert listed[0]["scopes"] == ["READ_ACCOUNT"]
    assert (await api.gql(CONNECTED, token=bob["token"]))["data"]["connectedApps"] == []
    stolen = await api.gql(REVOKE_APP, {"id": listed[0]["id"]}, bob["token"])
    assert codes(stolen["data"]["revokeConnectedApp"]) == ["NOT_FOUND"]
    revoked = await api.gql(REVOKE_APP, {"id": listed[0]["id"]}, alice["token"])
    assert codes(revoked["data"]["revokeConnectedApp"]) == []
    assert gql_code(await api.gql(ME, token=token)) == "UNAUTHENTICATED"


async def test_declining_redirects_with_access_denied(api: Api, app: dict[str, Any]) -> None:
    _, _, carol = await new_user(api, "oe")
    _, challenge = pkce()
    body = await api.gql(
        "mutation($i: AuthorizePartnerAppInput!) { authorizePartnerApp(input: $i)"
        " { redirectTo errors { code } } }",
        {"i": {"request": authorize_input(app["app"]["clientId"], challenge, "read:accounts"),
               "approve": False}},
        carol["token"],
    )  # fmt: skip
    target = body["data"]["authorizePartnerApp"]["redirectTo"]
    assert "error=access_denied" in target
    assert "state=st4te" in target
    assert "code=" not in target
    assert (await api.gql(CONNECTED, token=carol["token"]))["data"]["connectedApps"] == []


async def test_two_racing_exchanges_of_one_code_issue_one_token(
    api: Api, app: dict[str, Any]
) -> None:
    _, _, dan = await new_user(api, "of")
    code, verifier = await consent(api, dan["token"], app, "read:accounts")
    results = await asyncio.gather(*(exchange(api, app, code, verifier) for _ in range(6)))
    assert sorted(status for status, _ in results) == [200, 400, 400, 400, 400, 400]


async def test_racing_approvals_leave_one_consent(api: Api, app: dict[str, Any]) -> None:
    _, _, eve = await new_user(api, "og")
    results = await asyncio.gather(
        *(consent(api, eve["token"], app, "read:accounts") for _ in range(5))
    )
    assert len({code for code, _ in results}) == 5  # each approval has its own code
    listed = (await api.gql(CONNECTED, token=eve["token"]))["data"]["connectedApps"]
    assert len(listed) == 1
    # Every code leads to the one consent: revoking it stops them all.
    tokens = []
    for code, verifier in results[:2]:
        status, body = await exchange(api, app, code, verifier)
        assert status == 200, body
        tokens.append(body["access_token"])
    await api.gql(REVOKE_APP, {"id": listed[0]["id"]}, eve["token"])
    for token in tokens:
        assert gql_code(await api.gql(ME, token=token)) == "UNAUTHENTICATED"
