"""`helpArticles(search)` latency over GraphQL with 100,000 articles indexed (goal: p99 ≤ 50 ms).

    .venv/bin/python bench/support_search.py [--articles 100000] [--messages 100000]
        [--requests 300]

The corpus: the starter set (`bourse demo`'s 14 articles) plus generated articles, 80% English
and 20% Spanish, whose titles and bodies draw words from a Zipf-distributed vocabulary (a few
very common words, a long tail), with the domain words ("fractional", "withdrawal", …) at
realistic rates; plus `--messages` support messages on 1,000 tickets (the conversation tables
at size; they are not searched by `helpArticles`). Queries, run sequentially after a warm-up:
exact domain words, a misspelling (the trigram path), multi-word questions, a Spanish query,
and a very common word (the worst case: many matches to rank). Prints p50/p99 per query kind
and overall. Uses DATABASE_URL / REDIS_URL when set (else embedded servers under var/bench), in a
scratch database dropped at the end. The API runs in this process (figures include the client).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bench.stats import percentile  # noqa: E402
from bourse.app.demo.help import ARTICLES  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.process import ApiServer  # noqa: E402
from bourse.settings import Settings  # noqa: E402
from models.services import Services, open_services  # noqa: E402
from models.support_tables import (  # noqa: E402
    HelpArticle,
    SupportCategory,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketStatus,
)
from models.users import User  # noqa: E402
from tests.support.server import free_port  # noqa: E402

QUERY = """query($q: String, $l: String) { helpArticles(search: $q, locale: $l, first: 10) {
  edges { node { id slug title snippet } } } }"""
QUERIES: list[tuple[str, str, str]] = [
    ("exact word", "fractional", "en"),
    ("exact word", "withdrawal", "en"),
    ("exact word", "dividend", "en"),
    ("misspelt", "fractonal", "en"),
    ("misspelt", "withdrawl", "en"),
    ("question", "how do I buy fractional shares", "en"),
    ("question", "when does the market open", "en"),
    ("spanish", "acciones fraccionadas", "es"),
    ("common word", "account", "en"),
]
DOMAIN = ["fractional", "withdrawal", "deposit", "dividend", "market", "order", "limit",
          "security", "password", "statement", "transfer", "account", "tax"]  # fmt: skip
SYLLABLES = ["ka", "lo", "mer", "tin", "sa", "po", "ri", "ven", "dul", "tra", "ne", "bo", "qui",
             "fen", "ra", "gal", "mo", "sti", "ple", "dor"]  # fmt: skip


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def sentence(rng: random.Random, vocab: list[str], weights: list[float], n: int) -> str:
    words = rng.choices(vocab, weights=weights, k=n)
    # Domain words: "account" in ~10% of articles (the common case), the others ~0.3% each.
    if rng.random() < 0.10:
        words[rng.randrange(n)] = "account"
    if rng.random() < 0.04:
        words[rng.randrange(n)] = rng.choice(DOMAIN)
    return " ".join(words)


async def corpus(services: Services, articles: int, messages: int) -> None:
    rng = random.Random(19)
    vocab = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf
    for article in ARTICLES:
        await services.help_centre.save(article)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = 2000
    async with services.sessionmaker() as s:
        for start in range(0, articles, batch):
            rows = []
            for i in range(start, min(start + batch, articles)):
                locale = "es" if i % 5 == 0 else "en"
                rows.append({
                    "id": uuid.uuid4(), "slug": f"gen-{i}", "locale": locale,
                    "title": sentence(rng, vocab, weights, rng.randint(3, 7)).capitalize(),
                    "body": sentence(rng, vocab, weights, rng.randint(60, 140)),
                    "keywords": sentence(rng, vocab, weights, 3), "category": "generated",
                    "published": True, "helpful_count": 0, "not_helpful_count": 0,
                    "created_at": now, "updated_at": now,
                })  # fmt: skip
            await s.execute(insert(HelpArticle), rows)
            await s.commit()
        owner = uuid.uuid4()
        s.add(User(id=owner, username=f"b{owner.hex[:10]}", email=f"{owner.hex}@example.com",
                   password_hash="!"))  # fmt: skip
        await s.commit()
        tickets = [uuid.uuid4() for _ in range(1000)]
        await s.execute(insert(SupportTicket), [{
            "id": t, "user_id": owner, "subject": "Bench ticket", "category": SupportCategory.OTHER,
            "status": TicketStatus.OPEN, "priority": TicketPriority.NORMAL,
            "first_response_due_at": now, "resolution_due_at": now, "created_at": now,
            "updated_at": now,
        } for t in tickets])  # fmt: skip
        for start in range(0, messages, 5000):
            await s.execute(insert(SupportMessage), [{
                "id": uuid.uuid4(), "ticket_id": tickets[i % len(tickets)], "user_id": owner,
                "author_id": owner, "body": sentence(rng, vocab, weights, 20), "internal": False,
                "created_at": now,
            } for i in range(start, min(start + 5000, messages))])  # fmt: skip
            await s.commit()
        await s.execute(text("ANALYZE help_articles"))
        await s.execute(text("ANALYZE support_messages"))
        await s.commit()
        trigram = await s.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    print(
        f"indexed {articles:,} generated + {len(ARTICLES)} starter articles and {messages:,} "
        f"messages in {time.perf_counter() - started:.1f} s "
        f"(pg_trgm {'present' if trigram else 'absent: difflib correction'})"
    )


async def bench(settings: Settings, requests: int) -> None:
    from bff.app import create_app

    assert settings.database_url
    assert settings.redis_url
    port = free_port()
    app = create_app(settings, settings.database_url, settings.redis_url)
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:

            async def once(q: str, locale: str) -> tuple[float, list[str]]:
                start = time.perf_counter()
                r = await http.post(
                    "/graphql", json={"query": QUERY, "variables": {"q": q, "l": locale}}
                )
                elapsed = time.perf_counter() - start
                body = r.json()
                assert "errors" not in body, body
                return elapsed, [e["node"]["slug"] for e in body["data"]["helpArticles"]["edges"]]

            for kind, q, locale in QUERIES:
                _, slugs = await once(q, locale)
                print(f"  {kind:<12} {q!r:<36} top: {slugs[0] if slugs else '(none)'}")
            for _ in range(3):  # warm-up
                for _, q, locale in QUERIES:
                    await once(q, locale)
            by_kind: dict[str, list[float]] = {}
            for i in range(requests):
                kind, q, locale = QUERIES[i % len(QUERIES)]
                elapsed, _ = await once(q, locale)
                by_kind.setdefault(kind, []).append(elapsed)
            every = sorted(t for ts in by_kind.values() for t in ts)
            print(f"{requests} sequential helpArticles(search) queries over GraphQL:")
            for kind, ts in by_kind.items():
                print(f"  {kind:<12} p50 {statistics.median(ts) * 1000:7.2f} ms  "
                      f"p99 {percentile(ts, 0.99) * 1000:7.2f} ms")  # fmt: skip
            p99 = percentile(every, 0.99) * 1000
            verdict = "met" if p99 <= 50 else "NOT met"
            print(f"  {'all':<12} p50 {statistics.median(every) * 1000:7.2f} ms  "
                  f"p99 {p99:7.2f} ms  (goal: p99 <= 50 ms: {verdict})")  # fmt: skip
    finally:
        server.should_exit = True
        await task


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings("support") as settings:
        assert settings.database_url
        assert settings.redis_url
        async with open_services(
            settings, settings.database_url, settings.redis_url, pool_size=2
        ) as services:
            await corpus(services, args.articles, args.messages)
        await bench(settings, args.requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    configure_logging("WARNING")
    asyncio.run(main(parser.parse_args()))
