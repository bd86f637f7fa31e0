"""The edge: health probes, request ids, query limits, masked internal errors."""

from __future__ import annotations

import json

from bourse.settings import Settings
from tests.support.server import Api, running_api


async def test_healthz(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_dependency(api: Api) -> None:
    response = await api.http.get("/readyz")
    checks = response.json()["checks"]
    assert checks["postgres"] is True
    assert checks["redis"] is True
    # No matching shard runs in this test session, so the platform is not ready.
    assert checks["matching"] is False
    assert response.json()["down"] == ["matching"]  # what is down, by name
    assert response.status_code == 503


async def test_request_id_is_returned_and_propagated(api: Api) -> None:
    response = await api.http.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"
    generated = await api.http.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await api.http.get("/healthz", headers={"X-Request-ID": "bad id;drop\nx"[:11]})
    assert hostile.headers["x-request-id"] != "bad id;drop"


async def test_depth_limit(settings: Settings) -> None:
    # Today's schema is shallow, so the limit is lowered to show it is enforced.
    async with running_api(settings.model_copy(update={"graphql_max_depth": 0})) as api:
        body = await api.gql("{ me { id } }")
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert body.get("data") is None


async def test_alias_limit(api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    body = await api.gql(query)
    assert "aliases found" in body["errors"][0]["message"].lower()


async def test_token_limit(api: Api) -> None:
    query = "{ " + " ".join("__typename" for _ in range(2100)) + " }"
    response = await api.post(query)
    assert response.status_code < 500
    assert "more than 2000 tokens" in json.dumps(response.json())


async def test_malformed_requests_are_4xx_not_5xx(api: Api) -> None:
    bad_json = await api.http.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= bad_json.status_code < 500
    syntax = await api.gql("{ me { ")
    assert syntax["errors"]
    wrong_var = await api.gql(
        "mutation($e: String!) { requestPasswordReset(email: $e) { errors { code } } }",
        {"e": 42},
    )
    assert wrong_var["errors"]
    get = await api.http.get("/graphql", params={"query": "{ __typename }"})
    assert 400 <= get.status_code < 500  # queries over GET are refused (CSRF)


async def test_a_database_outage_is_service_unavailable_never_internals(
    settings: Settings,
) -> None:
    """With PostgreSQL unreachable, sign-in answers SERVICE_UNAVAILABLE (issue 20: a clear
    code, not an internal error), and nothing of the failure's internals."""
    broken = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/nowhere"})
    async with running_api(broken) as api:
        response = await api.post(
            'mutation { login(input: {email: "a@example.com", password: "Whatever-1"}) '
            "{ token errors { code } } }"
        )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["login"] == {"token": None, "errors": [{"code": "SERVICE_UNAVAILABLE"}]}
    text = json.dumps(body)
    assert "asyncpg" not in text
    assert "Connect" not in text
    assert "127.0.0.1:1" not in text
