"""GraphQL documents and helpers for the partner tests (keys, apps, OAuth, documents)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from models.accounts import ClientInfo
from models.services import Services
from models.users import Role
from tests.accounts.helpers import PASSWORD, unique
from tests.support.server import Api

CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) {
  apiKey { id name prefix scopes createdAt lastUsedAt revokedAt } secret
  errors { field code message } } }"""
KEYS = "{ apiKeys { id name prefix scopes createdAt lastUsedAt revokedAt } }"
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }"
CREATE_APP = """mutation($i: CreatePartnerAppInput!) { createPartnerApp(input: $i) {
  app { id clientId name redirectUris scopes } clientSecret errors { field code message } } }"""
REGISTER_DOCS = """mutation($i: RegisterTrustedDocumentsInput!) {
  registerTrustedDocuments(input: $i) { documentIds errors { field code message } } }"""
AUTHORIZATION = """query($i: OAuthAuthorizationInput!) { oauthAuthorization(input: $i) {
  appName scopes errors { field code } } }"""
APPROVE = """mutation($i: AuthorizePartnerAppInput!) {
  authorizePartnerApp(input: $i) { redirectTo errors { field code } } }"""
CONNECTED = "{ connectedApps { id clientId appName scopes createdAt lastUsedAt } }"
REVOKE_APP = "mutation($id: ID!) { revokeConnectedApp(id: $id) { errors { code } } }"
ME = "{ me { id email } }"
PLACE = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
  order { id status } errors { code } } }"""
DEPOSIT = """mutation($i: DepositInput!) { deposit(input: $i) {
  transaction { id } errors { code } } }"""
REDIRECT = "http://127.0.0.1:9/callback"


def gql_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    if not errors:
        return None
    return str(errors[0].get("extensions", {}).get("code", errors[0]["message"]))


async def admin_token(api: Api, services: Services) -> str:
    """An ADMIN signed in through the service (as `bourse admin create` makes one): works in
    trusted mode too, where ad-hoc sign-in documents are refused."""
    username, email = unique("adm")
    await services.accounts.register(username, email, PASSWORD, role=Role.ADMIN)
    issued = await services.accounts.login(email, PASSWORD, None, ClientInfo())
    return issued.access_token


async def create_key(api: Api, token: str, scopes: list[str], name: str = "bot") -> dict[str, Any]:
    body = await api.gql(CREATE_KEY, {"i": {"name": name, "scopes": scopes}}, token)
    payload: dict[str, Any] = body["data"]["createApiKey"]
    return payload


async def create_app(
    api: Api, admin: str, scopes: list[str], name: str = "Robo Advisor"
) -> dict[str, Any]:
    body = await api.gql(
        CREATE_APP, {"i": {"name": name, "redirectUris": [REDIRECT], "scopes": scopes}}, admin
    )
    payload: dict[str, Any] = body["data"]["createPartnerApp"]
    assert payload["errors"] == [], payload
    return payload


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def token_request(
    api: Api, form: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await api.http.post("/oauth/token", data=form, headers=headers or {})
    body: dict[str, Any] = response.json()
    return response.status_code, body


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_input(
    client_id: str, challenge: str, scope: str, state: str = "st4te"
) -> dict[str, str]:
    return {
        "clientId": client_id,
        "redirectUri": REDIRECT,
        "scope": scope,
        "state": state,
        "codeChallenge": challenge,
        "codeChallengeMethod": "S256",
    }


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def consent(api: Api, customer: str, app: dict[str, Any], scope: str) -> tuple[str, str]:
    """The customer approves; returns (code, verifier)."""
    verifier, challenge = pkce()
    body = await api.gql(
        APPROVE,
        {"i": {"request": authorize_input(app["app"]["clientId"], challenge, scope),
               "approve": True}},
        customer,
    )  # fmt: skip
    payload = body["data"]["authorizePartnerApp"]
    assert payload["errors"] == [], payload
    params = query_of(payload["redirectTo"])
    assert params["state"] == "st4te"
    return params["code"], verifier


async def exchange(
    api: Api, app: dict[str, Any], code: str, verifier: str
) -> tuple[int, dict[str, Any]]:
    return await token_request(
        api,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
         "code_verifier": verifier},
        basic(app["app"]["clientId"], app["clientSecret"]),
    )  # fmt: skip
