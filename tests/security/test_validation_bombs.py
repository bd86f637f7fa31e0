"""Validation costs one visit per node of the document: nested fragment spreads cannot stall it.

Twenty fragments each spreading the next twice made Strawberry's depth and alias limiters walk
2^20 paths (seconds per request, with the event loop blocked: even /healthz waited).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.server import Api


def spread_bomb(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 }\n" + "\n".join(fragments)


@pytest.mark.parametrize("levels", [20, 25])
async def test_a_fragment_bomb_is_refused_at_once_and_health_still_answers(
    api: Api, levels: int
) -> None:
    query = spread_bomb(levels)
    async with httpx.AsyncClient(base_url=api.base_url, timeout=3) as http:
        started = time.monotonic()
        bomb = asyncio.create_task(http.post("/graphql", json={"query": query}))
        await asyncio.sleep(0.05)  # the bomb is in the server
        health = await http.get("/healthz")
        health_took = time.monotonic() - started
        response = await bomb
        took = time.monotonic() - started
    assert health.status_code == 200
    assert health_took < 1, health_took
    assert took < 1, took
    body = response.json()
    assert body.get("data") is None
    assert "fragment spreads expand" in body["errors"][0]["message"].lower()


async def test_ordinary_fragments_still_validate(api: Api) -> None:
    body = await api.gql(
        "query { ...A ...B } fragment A on Query { __typename } "
        "fragment B on Query { ...A assets { __typename } }"
    )
    assert "errors" not in body, body
