"""Trusted documents on POST /graphql (API.md section 12): in production the web client's
manifest (from its build) runs, by id and as the text urql sends, and an ad-hoc query is
refused; a partner runs only what ADMIN registered for it; in development any document runs and
APQ registers documents in the shared store."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bff.webapp import DEFAULT_DIST
from bourse.settings import Settings
from models.services import Services
from tests.accounts.helpers import PASSWORD, unique
from tests.partners.helpers import (
    REGISTER_DOCS,
    admin_token,
    basic,
    create_app,
    gql_code,
    token_request,
)
from tests.support.server import Api, running_api

MANIFEST = DEFAULT_DIST / "persisted-documents.json"
AD_HOC = "query Mine { assets(first: 1) { edges { node { symbol } } } }"
PQ_CODES = {"PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_ALLOWED"}


def manifest() -> dict[str, str]:
    if not MANIFEST.is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    loaded: dict[str, str] = json.loads(Path(MANIFEST).read_text())
    return loaded


def as_urql_sends(text: str) -> str:
    """urql's stringifyDocument: runs of whitespace, commas and comments become one space."""
    return re.sub(r"([\s,]|#[^\n\r]+)+", " ", text).strip()


def named(documents: dict[str, str], operation: str) -> tuple[str, str]:
    for key, text in documents.items():
        if re.search(rf"\b(query|mutation|subscription) {operation}\b", text):
            return key, text
    raise AssertionError(f"no {operation} in the manifest")


def codes_of(body: dict[str, Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []}


@pytest.fixture(scope="module")
async def prod(settings: Settings) -> AsyncIterator[Api]:
    """The API as `bourse up` serves it in production (trusted documents only)."""
    update = {"env": "production", "redis_prefix": f"{settings.redis_prefix}pq:"}
    async with running_api(settings.model_copy(update=update)) as api:
        yield api


async def post(api: Api, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.http.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_every_manifest_document_is_admitted_in_production(prod: Api) -> None:
    documents = manifest()
    assert len(documents) > 20
    for key, text in documents.items():
        if re.search(r"\bsubscription \w+", text):
            continue  # websockets
        by_id = await post(prod, {"documentId": key, "variables": {}})
        assert not codes_of(by_id) & PQ_CODES, (key, by_id)
        sent = await post(prod, {"query": as_urql_sends(text), "variables": {}})
        assert not codes_of(sent) & PQ_CODES, (key, sent)


async def test_a_document_id_is_read_however_the_json_spells_its_key(prod: Api) -> None:
    """The view looks for `documentId` in the raw body before parsing it a second time: a key
    written with a JSON escape (`\\u0064ocumentId`, the same key to any JSON parser) still
    names the document, and a body without it is refused as an ad-hoc query."""
    key, _ = named(manifest(), "MarketSummary")
    for spelt in ('"documentId"', '"\\u0064ocumentId"'):
        raw = "{" + spelt + ': "' + key + '"}'
        response = await prod.http.post(
            "/graphql", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert not codes_of(answer) & PQ_CODES, (raw, answer)
        assert answer["data"]["marketSummary"]["asOf"], (raw, answer)
    assert codes_of(await post(prod, {"query": AD_HOC})) & PQ_CODES


async def test_the_web_clients_sign_in_works_by_id_text_and_apq(prod: Api) -> None:
    documents = manifest()
    key, login_text = named(documents, "Login")
    suffix = hashlib.sha256(str(id(documents)).encode()).hexdigest()[:8]
    email = f"pq.{suffix}@example.com"
    reg_key, register_text = named(documents, "Register")
    registered = await post(prod, {
        "documentId": reg_key,
        "variables": {"input": {"username": f"pq{suffix}", "email": email,
                                "password": "Sturdy-Pass-42"}},
    })  # fmt: skip
    assert codes_of(registered) == set(), registered
    signed_in = await post(prod, {
        "query": as_urql_sends(login_text),
        "variables": {"input": {"email": email, "password": "Sturdy-Pass-42"}},
    })  # fmt: skip
    assert codes_of(signed_in) == set(), signed_in
    payload = signed_in["data"]["login"]
    assert payload["token"], payload
    apq = await post(prod, {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": key.removeprefix("sha256:")}},
        "variables": {"input": {"email": email, "password": "Sturdy-Pass-42"}},
    })  # fmt: skip
    assert codes_of(apq) == set(), apq
    assert register_text


async def web_user(api: Api) -> str:
    """Sign up and in with the web client's own documents (by id); the access token."""
    documents = manifest()
    username, email = unique("pw")
    variables = {"input": {"username": username, "email": email, "password": PASSWORD}}
    registered = await post(api, {"documentId": named(documents, "Register")[0],
                                  "variables": variables})  # fmt: skip
    assert codes_of(registered) == set(), registered
    credentials = {"input": {"email": email, "password": PASSWORD}}
    signed_in = await post(
        api, {"documentId": named(documents, "Login")[0], "variables": credentials}
    )
    token: str = signed_in["data"]["login"]["token"]
    return token


async def test_ad_hoc_documents_are_refused_in_production(prod: Api) -> None:
    token = await web_user(prod)
    assert gql_code(await post(prod, {"query": AD_HOC}, token)) == "PERSISTED_QUERY_NOT_ALLOWED"
    assert gql_code(await post(prod, {"query": "{ me { id } }"})) == "PERSISTED_QUERY_NOT_ALLOWED"
    digest = hashlib.sha256(AD_HOC.encode()).hexdigest()
    register = {"query": AD_HOC,
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}  # fmt: skip
    assert gql_code(await post(prod, register, token)) == "PERSISTED_QUERY_NOT_ALLOWED"
    unknown = {"documentId": "sha256:" + "0" * 64}
    assert gql_code(await post(prod, unknown, token)) == "PERSISTED_QUERY_NOT_FOUND"
    assert gql_code(await post(prod, {"documentId": "md5:abc"})) == "PERSISTED_QUERY_NOT_FOUND"
    # A signed-in key is an app like the web client: the manifest only.
    assert gql_code(await post(prod, {"query": AD_HOC}, "bsk_not_a_key")) == (
        "PERSISTED_QUERY_NOT_ALLOWED"
    )


async def test_staff_sessions_may_run_any_document(prod: Api) -> None:
    assert prod.app is not None
    services: Services = prod.app.state.services
    admin = await admin_token(prod, services)
    body = await post(prod, {"query": AD_HOC}, admin)
    assert codes_of(body) == set(), body


async def test_a_partner_runs_only_its_registered_documents(prod: Api) -> None:
    assert prod.app is not None
    services: Services = prod.app.state.services
    admin = await admin_token(prod, services)
    app = await create_app(prod, admin, ["READ_MARKET"], "Quotes Widget")
    other = await create_app(prod, admin, ["READ_MARKET"], "Someone Else")
    mine = "query WidgetAssets { assets(first: 2) { edges { node { symbol name } } } }"
    bad = await post(prod, {"query": REGISTER_DOCS, "variables": {"i": {
        "clientId": app["app"]["clientId"], "documents": ["{ nope }"]}}}, admin)  # fmt: skip
    assert [e["code"] for e in bad["data"]["registerTrustedDocuments"]["errors"]] == [
        "INVALID_DOCUMENT"
    ]
    registered = await post(prod, {"query": REGISTER_DOCS, "variables": {"i": {
        "clientId": app["app"]["clientId"], "documents": [mine]}}}, admin)  # fmt: skip
    payload = registered["data"]["registerTrustedDocuments"]
    assert payload["errors"] == []
    [doc_id] = payload["documentIds"]
    assert doc_id == "sha256:" + hashlib.sha256(mine.encode()).hexdigest()

    async def token_of(found: dict[str, Any]) -> str:
        status, body = await token_request(
            prod, {"grant_type": "client_credentials"},
            basic(found["app"]["clientId"], found["clientSecret"]),
        )  # fmt: skip
        assert status == 200, body
        return str(body["access_token"])

    partner, stranger = await token_of(app), await token_of(other)
    assert codes_of(await post(prod, {"documentId": doc_id}, partner)) == set()
    assert codes_of(await post(prod, {"query": as_urql_sends(mine)}, partner)) == set()
    assert gql_code(await post(prod, {"query": AD_HOC}, partner)) == "PERSISTED_QUERY_NOT_ALLOWED"
    web_key, _ = named(manifest(), "Login")
    assert gql_code(await post(prod, {"documentId": web_key}, partner)) == (
        "PERSISTED_QUERY_NOT_ALLOWED"
    )
    assert gql_code(await post(prod, {"documentId": doc_id}, stranger)) == (
        "PERSISTED_QUERY_NOT_ALLOWED"
    )


async def test_development_runs_anything_and_apq_registers_in_the_shared_store(
    api: Api, settings: Settings
) -> None:
    text = "query DevOnly { assets(first: 3) { edges { node { symbol } } } }"
    digest = hashlib.sha256(text.encode()).hexdigest()
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    assert gql_code(await post(api, hashed)) == "PERSISTED_QUERY_NOT_FOUND"
    mismatch = {"query": text + " ", **hashed}
    assert gql_code(await post(api, mismatch)) == "BAD_USER_INPUT"
    assert codes_of(await post(api, {"query": text, **hashed})) == set()
    assert codes_of(await post(api, hashed)) == set()
    # Another API process (its own caches) finds it in PostgreSQL, by either form.
    async with running_api(settings) as second:
        assert codes_of(await post(second, hashed)) == set()
        assert codes_of(await post(second, {"documentId": f"sha256:{digest}"})) == set()


def test_the_canonical_form_ignores_how_a_client_prints_a_document() -> None:
    """codegen's manifest sorts fields and variables; urql sends the source order, its own
    spacing, fragments after the operation. The same operation is recognised; another is not."""
    from models.partners.documents import canonical_hash

    manifest_style = (
        "fragment F on User { email id } "
        "query Q($a: Int, $b: String) { me { ...F __typename } "
        "orders(first: $a) { edges { cursor } } }"
    )
    urql_style = (
        "query Q($b: String, $a: Int) {\n  orders(first: $a) { edges { cursor } }\n"
        "  me { __typename ...F }  # mine\n}\nfragment F on User { id, email }"
    )
    assert canonical_hash(manifest_style) == canonical_hash(urql_style)
    other = urql_style.replace("cursor", "node { id }")
    assert canonical_hash(other) != canonical_hash(manifest_style)
    aliased = urql_style.replace("orders(first: $a)", "mine: orders(first: $a)")
    assert canonical_hash(aliased) != canonical_hash(manifest_style)
    assert canonical_hash("{ not a document") is None


async def test_websockets_follow_the_same_rules_in_production(prod: Api) -> None:
    """A socket carries queries and mutations too: no way around the trusted documents."""
    token = await web_user(prod)
    _, unread = named(manifest(), "NotificationAdded")
    async with prod.ws({"Authorization": f"Bearer {token}"}) as conn:
        refused = await prod.ws_execute(conn, AD_HOC, op_id="1")
        assert codes_of(refused) == {"PERSISTED_QUERY_NOT_ALLOWED"}
        # The web client's own subscription is admitted: it streams (no refusal, no error).
        await conn.send(json.dumps({"id": "2", "type": "subscribe",
                                    "payload": {"query": as_urql_sends(unread)}}))  # fmt: skip
        seen: list[dict[str, Any]] = []

        async def listen() -> None:
            while True:
                seen.append(json.loads(await conn.recv()))

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listen(), 1.5)
        assert all(m.get("id") != "2" or m["type"] == "next" for m in seen), seen
