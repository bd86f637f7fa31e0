"""A query's cost (fields, each list weighted by its `first`) is bounded: many large pages in
one document are refused before anything runs; an ordinary page is not."""

from __future__ import annotations

from tests.support.server import Api

NODE = "id symbol name assetClass currency tickSize fractionable tradable"


def pages(count: int, first: str) -> str:
    variables = "($n: Int)" if first.startswith("$") else ""
    return (
        f"query{variables} {{"
        + " ".join(
            f"a{i}: assets(first: {first}) {{ edges {{ cursor node {{ {NODE} }} }} }}"
            for i in range(count)
        )
        + "}"
    )


async def test_many_large_pages_are_refused(api: Api) -> None:
    body = await api.gql(pages(10, "100"))
    assert body.get("data") is None
    assert "costs" in body["errors"][0]["message"]
    # A page size from a variable counts as the most it may ask for.
    body = await api.gql(pages(10, "$n"), {"n": 1})
    assert body.get("data") is None
    assert "costs" in body["errors"][0]["message"]


async def test_an_ordinary_page_runs(api: Api) -> None:
    body = await api.gql(pages(1, "100"))
    assert "errors" not in body, body
    assert body["data"]["a0"]["edges"] is not None
    body = await api.gql(pages(8, "10"))
    assert "errors" not in body, body
