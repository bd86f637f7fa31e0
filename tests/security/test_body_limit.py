"""Request bodies are bounded: over the limit is 413, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bourse.settings import Settings
from tests.support.server import Api


async def test_a_ten_megabyte_body_is_refused(api: Api, settings: Settings) -> None:
    padding = "#" + "x" * (10 * 1024 * 1024)
    response = await api.http.post("/graphql", json={"query": "{ __typename }\n" + padding})
    assert response.status_code == 413
    assert settings.http_max_body_bytes < 10 * 1024 * 1024


async def test_a_chunked_body_over_the_limit_is_refused(api: Api, settings: Settings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "x": "'
        for _ in range(settings.http_max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = await api.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_an_ordinary_request_still_runs(api: Api) -> None:
    assert (await api.gql("{ __typename }"))["data"] == {"__typename": "Query"}
