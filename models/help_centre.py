"""The help centre: articles per locale, ranked full-text search with typo tolerance, feedback.

- Search: `websearch_to_tsquery` under the locale's dictionary (raw user input never errors)
  matched against the generated `search` column (title, keywords, body) through its GIN index;
  ranking reads only `search_head` (title and keywords). Articles whose title and keywords hold
  every word rank first (score 2 + `ts_rank_cd` normalised to [0, 1)), then the other matches
  (1 + rank; a ticket subject such as "fractional shares question" still suggests the
  article). At most `RANKED_CANDIDATES` (2,000) matches are ranked: a word found in more
  articles than that ranks the first 2,000 the index yields, not all of them (ranking the
  28,000 matches of "account" in the 100,000-article benchmark read the whole table: 170 ms;
  capped, 25 ms).
- Typos: when no word matches as written and pg_trgm exists, a second query ranks trigram
  word-similarity matches of the title and keywords (`<%`, score = similarity < 1), so
  "fractonal" still finds "Fractional shares"; it runs only then, so ordinary searches stay on
  the GIN index of `search` (a page cursor's score says which of the two it continues).
  Without pg_trgm (the embedded pgserver wheel lacks it) query words unknown to the titles and
  keywords are first corrected to the closest known word (difflib), less finely.
- Pages are keyset on (score, id) with a search, (updated_at, id) without; both through the one
  cursor codec (`models.pagination`).
- Snippets: `ts_headline` on the page's rows only, Markdown markup stripped, HTML-escaped, the
  matches wrapped in `<mark>…</mark>`: the only markup a snippet ever carries.
- Bodies are Markdown rendered with raw HTML disabled (markdown-it) and then sanitised (nh3):
  `bodyHtml` is safe to insert; `body` is the source.
"""

from __future__ import annotations

import difflib
import html
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import pagination
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.pagination import Page
from models.portfolios import parse_id
from models.support_tables import LOCALES, HelpArticle, HelpFeedback
from models.validation import bounded_text

DICTIONARIES = {"en": "english", "es": "spanish"}
MAX_SEARCH = 200
MAX_BODY = 50_000
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,118}[a-z0-9]$")
CATEGORY_RE = re.compile(r"^[a-z][a-z-]{1,38}[a-z]$")
MARK_OPEN, MARK_CLOSE = "\u2983", "\u2984"  # sentinels ts_headline puts around matches
HEADLINE_OPTIONS = (
    f"StartSel={MARK_OPEN}, StopSel={MARK_CLOSE}, MaxWords=28, MinWords=10, ShortWord=2, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)
VOCABULARY_TTL_SECONDS = 60.0
_WORD = re.compile(r"\w+")
_MARKDOWN_NOISE = re.compile(r"(^|\s)#{1,6}\s|[*_`>]|!?\[([^\]]*)\]\([^)]*\)")

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@lru_cache(maxsize=512)
def render_markdown(body: str) -> str:
    """Markdown → HTML with raw HTML off, then sanitised: safe to insert as is."""
    return nh3.clean(_markdown.render(body), link_rel="noopener noreferrer nofollow")


def locale_of(raw: str | None) -> str:
    """`es`, `es-MX` → `es`; anything else (or nothing) → `en`."""
    base = (raw or "en").strip().lower().split("-")[0]
    return base if base in LOCALES else "en"


def any_words(query: str) -> str:
    """The query's words as alternatives ("a or b"), its operators and quotes dropped."""
    words = [w for w in _WORD.findall(query) if w.lower() != "or"]
    return " or ".join(words)


def snippet_html(headline: str) -> str:
    plain = _MARKDOWN_NOISE.sub(lambda m: m.group(1) or m.group(2) or "", headline)
    escaped = html.escape(" ".join(plain.split()), quote=False)
    return escaped.replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


@dataclass(frozen=True, slots=True)
class ArticleView:
    id: uuid.UUID
    slug: str
    locale: str
    title: str
    body: str
    category: str
    published: bool
    updated_at: datetime
    helpful_count: int
    not_helpful_count: int
    snippet: str | None = None
    score: float | None = None

    @property
    def body_html(self) -> str:
        return render_markdown(self.body)


@dataclass(frozen=True, slots=True)
class ArticleDraft:
    slug: str
    locale: str
    title: str
    body: str
    category: str
    keywords: str = ""
    published: bool = True


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category: str
    article_count: int


def _view(a: HelpArticle, snippet: str | None = None, score: float | None = None) -> ArticleView:
    return ArticleView(
        a.id, a.slug, a.locale, a.title, a.body, a.category, a.published, a.updated_at,
        a.helpful_count, a.not_helpful_count, snippet, score,
    )  # fmt: skip


def clean_draft(draft: ArticleDraft) -> ArticleDraft:
    checks = ProblemCollector()
    slug = draft.slug.strip().lower()
    if not SLUG_RE.fullmatch(slug):
        checks.problems.append(
            Problem(ErrorCode.INVALID_INPUT, "A slug is 3-120 of a-z, 0-9 and '-'.", "slug")
        )
    locale = draft.locale.strip().lower()
    if locale not in LOCALES:
        checks.problems.append(
            Problem(ErrorCode.INVALID_INPUT, f"Locales: {', '.join(LOCALES)}.", "locale")
        )
    category = draft.category.strip().lower()
    if not CATEGORY_RE.fullmatch(category):
        checks.problems.append(
            Problem(ErrorCode.INVALID_INPUT, "A category is 3-40 of a-z and '-'.", "category")
        )
    title = checks.check(lambda: bounded_text(draft.title, 200, "title")) or ""
    if not title and not any(p.field == "title" for p in checks.problems):
        checks.problems.append(Problem(ErrorCode.INVALID_INPUT, "A title is required.", "title"))
    body = checks.check(lambda: bounded_text(draft.body, MAX_BODY, "body")) or ""
    keywords = checks.check(lambda: bounded_text(draft.keywords, 500, "keywords")) or ""
    checks.raise_if_any()
    return ArticleDraft(slug, locale, title, body, category, keywords, draft.published)


RANKED_CANDIDATES = 2000  # a word in more articles ranks among the first 2,000 matches found
FULL_TEXT = (
    "a.search @@ q.anyq",
    "CASE WHEN a.search_head @@ q.tsq THEN 2.0::float8 ELSE 1.0::float8 END"
    " + ts_rank_cd(a.search_head, q.anyq, 32)::float8",
)
TRIGRAM = (
    ":q <% (a.title || ' ' || a.keywords)",
    "word_similarity(:q, a.title || ' ' || a.keywords)::float8",
)


def _search_sql(mode: tuple[str, str]) -> str:
    """One ranked page of matches: `mode` is (match condition, score), FULL_TEXT or TRIGRAM."""
    match, score = mode
    return f"""
        WITH q AS (SELECT websearch_to_tsquery(CAST(:dict AS regconfig), :q) AS tsq,
                          websearch_to_tsquery(CAST(:dict AS regconfig), :any) AS anyq),
        candidates AS (
            SELECT a.id, a.search_head, a.title, a.keywords
            FROM help_articles a, q
            WHERE a.locale = :locale
              AND (a.published OR :unpublished)
              AND (CAST(:category AS text) IS NULL OR a.category = :category)
              AND {match}
            LIMIT {RANKED_CANDIDATES}
        ),
        hits AS (SELECT a.id, {score} AS score FROM candidates a, q),
        page AS (
            SELECT id, score FROM hits
            WHERE CAST(:cursor_score AS float8) IS NULL
               OR (score, id) < (CAST(:cursor_score AS float8), CAST(:cursor_id AS uuid))
            ORDER BY score DESC, id DESC
            LIMIT :limit
        )
        SELECT page.id, page.score,
               ts_headline(CAST(:dict AS regconfig), a.body, q.anyq, :options) AS headline
        FROM page JOIN help_articles a ON a.id = page.id, q
        ORDER BY page.score DESC, page.id DESC
    """  # noqa: S608 - `mode` is one of the two constants above, never input


class HelpCentre:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sm = sessionmaker
        # Customers' searches and listings may lag (models/replicas.py); staff editing
        # articles (include_unpublished) read what they just saved, from the primary.
        self._reads = reads or sessionmaker
        self._trigram: bool | None = None
        self._vocabulary: dict[str, tuple[float, list[str]]] = {}  # locale → (read at, words)

    async def _corrected(self, s: AsyncSession, locale: str, words: str) -> str:
        """Without pg_trgm: each query word unknown to the titles and keywords is replaced by
        the closest known word (difflib ratio ≥ 0.75), the vocabulary cached for a minute."""
        now = time.monotonic()
        cached = self._vocabulary.get(locale)
        if cached is None or now - cached[0] > VOCABULARY_TTL_SECONDS:
            rows = await s.scalars(
                text(
                    "SELECT word FROM ts_stat($$SELECT to_tsvector('simple', title || ' ' || "
                    "keywords) FROM help_articles WHERE published AND locale = '$$ || "
                    ":locale || $$'$$)"
                ),
                {"locale": locale},
            )
            cached = (now, sorted(rows))
            self._vocabulary[locale] = cached
        known = set(cached[1])
        out = []
        for word in words.split():
            plain = word.lower().strip(".,;:!?¿¡\"'()")
            if len(plain) < 4 or plain in known:
                out.append(word)
                continue
            close = difflib.get_close_matches(plain, cached[1], n=1, cutoff=0.75)
            out.append(close[0] if close else word)
        return " ".join(out)

    async def _has_trigram(self, s: AsyncSession) -> bool:
        if self._trigram is None:
            found = await s.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
            self._trigram = found is not None
        return self._trigram

    async def search(
        self,
        query: str | None,
        *,
        locale: str | None,
        category: str | None = None,
        first: int | None = 10,
        after: str | None = None,
        include_unpublished: bool = False,
    ) -> Page[ArticleView]:
        limit = pagination.page_size(first, default=10)
        loc = locale_of(locale)
        words = " ".join((query or "").split())[:MAX_SEARCH]
        if not words:
            return await self._listing(loc, category, limit, after, include_unpublished)
        cursor: tuple[float, uuid.UUID] | None = None
        if after:
            raw_score, raw_id = pagination.cursor_parts(after, 2)
            try:
                cursor = (float(raw_score), uuid.UUID(raw_id))
            except ValueError:
                raise DomainError.one(
                    ErrorCode.INVALID_INPUT, "Not a valid cursor.", "after"
                ) from None
        params = {
            "dict": DICTIONARIES[loc],
            "locale": loc,
            "unpublished": include_unpublished,
            "category": category.strip().lower() if category else None,
            "cursor_score": cursor[0] if cursor else None,
            "cursor_id": str(cursor[1]) if cursor else None,
            "limit": limit + 1,
            "options": HEADLINE_OPTIONS,
        }
        async with (self._sm if include_unpublished else self._reads)() as s:
            trigram = await self._has_trigram(s)
            if not trigram:
                words = await self._corrected(s, loc, words)
            params |= {"q": words, "any": any_words(words)}
            rows: Sequence[Row[Any]] = ()
            if cursor is None or cursor[0] >= 1.0:
                rows = (await s.execute(text(_search_sql(FULL_TEXT)), params)).all()
            if trigram and not rows and (cursor is None or cursor[0] < 1.0):
                # Nothing matched the words as written: the typo fallback.
                rows = (await s.execute(text(_search_sql(TRIGRAM)), params)).all()
            ids = [r.id for r in rows[:limit]]
            articles = {
                a.id: a for a in await s.scalars(select(HelpArticle).where(HelpArticle.id.in_(ids)))
            }
        items = [
            _view(articles[r.id], snippet_html(r.headline), float(r.score))
            for r in rows[:limit]
            if r.id in articles
        ]
        return Page(items, len(rows) > limit)

    async def _listing(
        self,
        locale: str,
        category: str | None,
        limit: int,
        after: str | None,
        include_unpublished: bool,
    ) -> Page[ArticleView]:
        stmt = select(HelpArticle).where(HelpArticle.locale == locale)
        if not include_unpublished:
            stmt = stmt.where(HelpArticle.published)
        if category:
            stmt = stmt.where(HelpArticle.category == category.strip().lower())
        if after:
            at, ident = pagination.decode_cursor(after, uuid.UUID)
            stmt = stmt.where(
                (HelpArticle.updated_at < at)
                | ((HelpArticle.updated_at == at) & (HelpArticle.id < ident))
            )
        stmt = stmt.order_by(HelpArticle.updated_at.desc(), HelpArticle.id.desc()).limit(limit + 1)
        async with (self._sm if include_unpublished else self._reads)() as s:
            found = list(await s.scalars(stmt))
        return Page([_view(a) for a in found[:limit]], len(found) > limit)

    @staticmethod
    def cursor(view: ArticleView) -> str:
        if view.score is not None:
            return pagination.encode_cursor(repr(view.score), view.id)
        return pagination.encode_cursor(view.updated_at, view.id)

    async def get(
        self, slug: str, locale: str | None, *, include_unpublished: bool = False
    ) -> ArticleView | None:
        if "\x00" in slug:  # PostgreSQL text cannot hold NUL: no article has such a slug
            return None
        stmt = select(HelpArticle).where(
            HelpArticle.slug == slug.strip().lower(), HelpArticle.locale == locale_of(locale)
        )
        if not include_unpublished:
            stmt = stmt.where(HelpArticle.published)
        async with self._sm() as s:
            found = await s.scalar(stmt)
        return _view(found) if found else None

    async def categories(self, locale: str | None) -> list[CategoryCount]:
        async with self._sm() as s:
            rows = await s.execute(
                select(HelpArticle.category, func.count())
                .where(HelpArticle.locale == locale_of(locale), HelpArticle.published)
                .group_by(HelpArticle.category)
                .order_by(HelpArticle.category)
            )
            return [CategoryCount(c, n) for c, n in rows]

    async def save(self, draft: ArticleDraft) -> ArticleView:
        """Create or replace the article (slug, locale)."""
        clean = clean_draft(draft)
        now = utcnow()
        values = {
            "slug": clean.slug, "locale": clean.locale, "title": clean.title,
            "body": clean.body, "category": clean.category, "keywords": clean.keywords,
            "published": clean.published, "updated_at": now,
        }  # fmt: skip
        stmt = (
            insert(HelpArticle)
            .values(id=uuid.uuid4(), created_at=now, helpful_count=0, not_helpful_count=0, **values)
            .on_conflict_do_update(constraint="uq_help_articles_slug_locale", set_=values)
            .returning(HelpArticle.id)
        )
        async with self._sm.begin() as s:
            ident = (await s.execute(stmt)).scalar_one()
            found = await s.get(HelpArticle, ident, populate_existing=True)
            assert found is not None
            return _view(found)

    async def feedback(self, user_id: uuid.UUID, article_id: str, helpful: bool) -> ArticleView:
        """One vote per user and article (voting again replaces it)."""
        ident = parse_id(article_id)
        async with self._sm.begin() as s:
            found = await s.get(HelpArticle, ident, with_for_update=True) if ident else None
            if found is None or not found.published:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such article.", "articleId")
            await s.execute(
                insert(HelpFeedback)
                .values(article_id=found.id, user_id=user_id, helpful=helpful, created_at=utcnow())
                .on_conflict_do_update(constraint="pk_help_feedback", set_={"helpful": helpful})
            )
            counts = (
                await s.execute(
                    select(
                        func.count().filter(HelpFeedback.helpful),
                        func.count().filter(~HelpFeedback.helpful),
                    ).where(HelpFeedback.article_id == found.id)
                )
            ).one()
            await s.execute(
                update(HelpArticle)
                .where(HelpArticle.id == found.id)
                .values(helpful_count=counts[0], not_helpful_count=counts[1])
            )
            await s.refresh(found)
            return _view(found)
