"""The help centre against real PostgreSQL: ranked search in both languages, typo tolerance,
safe rendering, FAQs by category, feedback, and who may edit."""

from __future__ import annotations

from typing import Any

import pytest

from bourse.app.demo.help import ARTICLES, MACROS
from bourse.app.demo.loader import DEMO_SUPPORT_EMAIL, DEMO_SUPPORT_PASSWORD, load_demo
from bourse.settings import Settings
from models.services import Services
from models.users import Role
from tests.accounts.helpers import codes, error_code, login, new_user
from tests.support.server import Api
from tests.support_desk.helpers import SEARCH, staff

SAVE = """mutation($input: SaveHelpArticleInput!) { saveHelpArticle(input: $input) {
  article { id slug bodyHtml published } errors { field code message } } }"""


@pytest.fixture(scope="module", autouse=True)
async def starter_set(services: Services) -> None:
    for article in ARTICLES:  # what `bourse demo` loads
        await services.help_centre.save(article)


async def search(api: Api, q: str | None, locale: str, **more: Any) -> list[dict[str, Any]]:
    body = await api.gql(SEARCH, {"q": q, "locale": locale, **more})
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["helpArticles"]["edges"]]


@pytest.mark.parametrize(
    ("query", "locale"),
    [
        ("fractional", "en"),
        ("fractional", "es"),  # an English word in Spanish: the article's keywords carry it
        ("acciones fraccionadas", "es"),
        ("fractonal", "en"),  # misspelt: pg_trgm's word similarity
        ("fractonal shares", "en"),
        ("fracionadas", "es"),
    ],
)
async def test_the_fractional_shares_article_ranks_first(api: Api, query: str, locale: str) -> None:
    found = await search(api, query, locale)
    assert found, f"nothing found for {query!r}"
    assert found[0]["slug"] == "fractional-shares"
    assert found[0]["locale"] == locale


async def test_snippets_highlight_matches_and_escape_everything_else(api: Api) -> None:
    [top, *_] = await search(api, "withdraw", "en")
    assert top["slug"] == "deposits-and-withdrawals"
    assert "<mark>withdraw</mark>" in top["snippet"].lower()
    without_marks = top["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks
    # Search input is never an error, whatever it holds.
    for odd in ('"unterminated', "a & | ! b", "<script>alert(1)</script>", "x" * 500, ":*"):
        await search(api, odd, "en")


async def test_market_hours_and_order_words_find_their_articles(api: Api) -> None:
    assert (await search(api, "when is the market open", "en"))[0]["slug"] == "market-hours"
    assert (await search(api, "horario del mercado", "es"))[0]["slug"] == "market-hours"
    assert (await search(api, "stop loss", "en"))[0]["slug"] == "order-types"
    assert (await search(api, "códigos de recuperación", "es"))[0]["slug"] == "account-security"


async def test_pages_follow_the_ranking_without_repeats(api: Api) -> None:
    seen: list[str] = []
    after = None
    while True:
        body = await api.gql(SEARCH, {"q": "cash or orders or account", "locale": "en", "first": 1,
                                      "after": after})  # fmt: skip
        conn = body["data"]["helpArticles"]
        seen += [e["node"]["slug"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    everything = [a["slug"] for a in await search(api, "cash or orders or account", "en", first=50)]
    assert seen == everything
    assert len(set(seen)) == len(seen) > 1
    bad = await api.gql(SEARCH, {"q": "account", "locale": "en", "after": "not-a-cursor"})
    assert error_code(bad) == "BAD_USER_INPUT"


async def test_faq_categories_and_listing_by_category(api: Api) -> None:
    body = await api.gql('{ helpCategories(locale: "es") { category articleCount } }')
    categories = {c["category"] for c in body["data"]["helpCategories"]}
    assert categories >= {"account", "funding", "orders", "market-hours", "fractional-shares",
                          "taxes", "security"}  # fmt: skip
    listed = await search(api, None, "es", category="taxes")
    assert [a["slug"] for a in listed] == ["taxes-and-cost-basis"]
    assert listed[0]["locale"] == "es"
    one = await api.gql(
        'query { helpArticle(slug: "market-hours", locale: "es") { title bodyHtml } }'
    )
    assert one["data"]["helpArticle"]["title"] == "Horario de mercado y festivos"
    assert "<strong>09:30 a 16:00" in one["data"]["helpArticle"]["bodyHtml"]


async def test_staff_edit_articles_and_markdown_is_rendered_safely(
    api: Api, services: Services
) -> None:
    _, _, customer = await new_user(api, "hc")
    article = {
        "slug": "safe-rendering-check", "locale": "en", "category": "security",
        "title": "Safe rendering", "published": True,
        "body": "Hello <script>alert('x')</script> [click](javascript:alert(1)) "
                "<img src=x onerror=alert(1)> **bold**",
    }  # fmt: skip
    refused = await api.gql(SAVE, {"input": article}, customer["token"])
    assert error_code(refused) == "FORBIDDEN"
    token, _ = await staff(api, services, Role.SUPPORT)
    saved = (await api.gql(SAVE, {"input": article}, token))["data"]["saveHelpArticle"]
    assert saved["errors"] == []
    rendered = saved["article"]["bodyHtml"]
    assert "<strong>bold</strong>" in rendered
    assert "<script" not in rendered
    assert "<img" not in rendered
    assert 'href="javascript' not in rendered
    bad = await api.gql(SAVE, {"input": {**article, "slug": "Bad Slug!", "locale": "fr"}}, token)
    assert sorted(codes(bad["data"]["saveHelpArticle"])) == ["INVALID_INPUT", "INVALID_INPUT"]
    # A draft is hidden from customers and shown to staff.
    draft = {**article, "slug": "draft-check", "published": False}
    assert (await api.gql(SAVE, {"input": draft}, token))["data"]["saveHelpArticle"]["errors"] == []
    q = 'query { helpArticle(slug: "draft-check", locale: "en") { slug } }'
    assert (await api.gql(q, token=customer["token"]))["data"]["helpArticle"] is None
    assert (await api.gql(q, token=token))["data"]["helpArticle"] == {"slug": "draft-check"}


async def test_was_this_helpful_counts_one_vote_per_customer(api: Api) -> None:
    [article] = await search(api, "fractional", "en", first=1)
    vote = """mutation($id: ID!, $h: Boolean!) { rateHelpArticle(articleId: $id, helpful: $h) {
      article { helpfulCount notHelpfulCount } errors { code } } }"""
    _, _, one = await new_user(api, "hv")
    _, _, two = await new_user(api, "hv")
    before = (await api.gql(vote, {"id": article["id"], "h": True}, one["token"]))["data"]
    start = before["rateHelpArticle"]["article"]["helpfulCount"]
    again = await api.gql(vote, {"id": article["id"], "h": True}, one["token"])
    assert again["data"]["rateHelpArticle"]["article"]["helpfulCount"] == start
    other = await api.gql(vote, {"id": article["id"], "h": False}, two["token"])
    counts = other["data"]["rateHelpArticle"]["article"]
    assert counts["helpfulCount"] == start
    assert counts["notHelpfulCount"] >= 1
    missing = await api.gql(vote, {"id": "nope", "h": True}, one["token"])
    assert codes(missing["data"]["rateHelpArticle"]) == ["NOT_FOUND"]


async def test_bourse_demo_loads_the_starter_set_in_both_languages(
    api: Api, settings: Settings, services: Services
) -> None:
    assert settings.database_url
    assert settings.redis_url
    for _ in range(2):  # idempotent
        await load_demo(settings, settings.database_url, settings.redis_url)
    topics = {"account", "funding", "orders", "market-hours", "fractional-shares", "taxes",
              "security"}  # fmt: skip
    for locale in ("en", "es"):
        body = await api.gql(
            "query($l: String) { helpCategories(locale: $l) { category articleCount } }",
            {"l": locale},
        )
        counts = {c["category"]: c["articleCount"] for c in body["data"]["helpCategories"]}
        assert topics <= set(counts), locale
        assert all(counts[t] == 1 for t in topics - {"security"}), counts
    agent = await login(api, DEMO_SUPPORT_EMAIL, DEMO_SUPPORT_PASSWORD)
    assert agent["errors"] == []
    macros = await api.gql("{ supportMacros { title } }", token=agent["token"])
    assert len(macros["data"]["supportMacros"]) == len(MACROS)
