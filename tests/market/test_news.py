"""news: the sample adapter, idempotent ingestion, the query and its limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bourse.app.demo.assets import new_assets
from models.services import Services
from tests.support.server import Api
from workers.marketdata.news import SAMPLE_NEWS_PATH, SampleNewsSource, ingest

NEWS = """query($a: String, $n: Int) { news(assetId: $a, first: $n) {
  id assetIds headline summary source url publishedAt } }"""


def test_sample_feed_is_marked_fictional_and_covers_the_demo_names() -> None:
    raw = json.loads(SAMPLE_NEWS_PATH.read_text())
    items = raw["items"]
    assert len(items) >= 30
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert "not real news" in item["summary"]
        assert item["url"].startswith("https://news.example.com/")
    mentioned = {a for i in items for a in i["asset_ids"]}
    assert {"AAPL", "MSFT", "TSLA", "SPY", "BTC-USD"} <= mentioned


async def test_ingest_is_idempotent(services: Services) -> None:
    await ingest(services.news, SampleNewsSource())  # the worker may have loaded it already
    assert await ingest(services.news, SampleNewsSource()) == 0
    # A later load (other stamps) does not move or duplicate stored items.
    later = SampleNewsSource(now=datetime(2030, 1, 1, tzinfo=UTC))
    assert await ingest(services.news, later) == 0


async def test_news_query(api: Api, services: Services) -> None:
    await services.assets.upsert_many(new_assets())
    await ingest(services.news, SampleNewsSource())
    body = await api.gql(NEWS, {"n": 5})
    assert "errors" not in body, body
    items = body["data"]["news"]
    assert len(items) == 5
    stamps = [datetime.fromisoformat(i["publishedAt"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)
    assert set(items[0]) == {
        "id", "assetIds", "headline", "summary", "source", "url", "publishedAt",
    }  # fmt: skip
    # About one asset (case-insensitive id).
    body = await api.gql(NEWS, {"a": "aapl", "n": 50})
    aapl = body["data"]["news"]
    assert len(aapl) >= 2
    assert all("AAPL" in i["assetIds"] for i in aapl)
    # `first` is capped; zero is empty; the default is 10.
    assert len((await api.gql(NEWS, {"n": 100_000}))["data"]["news"]) <= 50
    assert (await api.gql(NEWS, {"n": 0}))["data"]["news"] == []
    assert len((await api.gql("{ news { id } }"))["data"]["news"]) == 10


async def test_news_errors(api: Api) -> None:
    body = await api.gql(NEWS, {"a": "NOT-LISTED-Q", "n": 3})
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_ASSET"
    body = await api.gql(NEWS, {"n": -1})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
