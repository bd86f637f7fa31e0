"""The trusted-document store (persisted queries, issue 18 item 1): documents by the SHA-256
of their text, in PostgreSQL so every API process sees the same set.

Ids are content hashes, so a document found once never changes: lookups are cached per process
without expiry (bounded LRU). Partner registrations are cached only once found (a document
registered a moment ago is found on the next miss; revocations of documents are not a feature).
The web client's own manifest is a build artifact and is not stored here (`bff/trusted_documents.py`
loads it beside the app).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from graphql import GraphQLSyntaxError, parse, print_ast
from graphql.language import (
    DefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models.partners.tables import PartnerDocument, TrustedDocument


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _selections(node: SelectionSetNode | None) -> str:
    if node is None:
        return ""
    return "{" + " ".join(sorted(_selection(s) for s in node.selections)) + "}"


def _directives(node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> str:
    return " ".join(print_ast(d) for d in node.directives or ())


def _selection(node: SelectionNode) -> str:
    if isinstance(node, FieldNode):
        alias = f"{node.alias.value}:" if node.alias else ""
        args = ",".join(sorted(print_ast(a) for a in node.arguments or ()))
        return (
            f"{alias}{node.name.value}({args}){_directives(node)}{_selections(node.selection_set)}"
        )
    if isinstance(node, InlineFragmentNode):
        on = node.type_condition.name.value if node.type_condition else ""
        return f"...on {on}{_directives(node)}{_selections(node.selection_set)}"
    assert isinstance(node, FragmentSpreadNode)
    return f"...{node.name.value}{_directives(node)}"


def _definition(node: DefinitionNode) -> str:
    if isinstance(node, OperationDefinitionNode):
        name = node.name.value if node.name else ""
        variables = ",".join(sorted(print_ast(v) for v in node.variable_definitions or ()))
        directives = " ".join(print_ast(d) for d in node.directives or ())
        return (
            f"{node.operation.value} {name}({variables}){directives}"
            f"{_selections(node.selection_set)}"
        )
    if isinstance(node, FragmentDefinitionNode):
        directives = " ".join(print_ast(d) for d in node.directives or ())
        return (
            f"fragment {node.name.value} on {node.type_condition.name.value}{directives}"
            f"{_selections(node.selection_set)}"
        )
    return print_ast(node)


def canonical_hash(text: str) -> str | None:
    """SHA-256 of the document in a canonical form: the definitions, the selections of every
    selection set, a field's arguments and an operation's variables sorted; whitespace, commas
    and comments gone. Two texts with the same hash ask for the same data; clients print
    documents their own way (codegen's manifest sorts fields and variables, urql prints them
    in source order). None: the text does not parse."""
    try:
        document = parse(text, no_location=True)
    except GraphQLSyntaxError:
        return None
    return sha256_hex("\n".join(sorted(_definition(d) for d in document.definitions)))


class _Lru(OrderedDict[str, str]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: str) -> str | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class TrustedDocumentStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache_size: int = 1024,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._bodies = _Lru(cache_size)
        self._canonical = _Lru(cache_size)  # text -> canonical hash ("" when it does not parse)
        self._partner = _Lru(cache_size)  # "app:hash" -> document hash, found registrations
        self._clock = clock

    def canonical(self, text: str) -> str | None:
        found = self._canonical.get_fresh(text)
        if found is None:
            found = canonical_hash(text) or ""
            self._canonical.put(text, found)
        return found or None

    async def body(self, document_hash: str) -> str | None:
        cached = self._bodies.get_fresh(document_hash)
        if cached is not None:
            return cached
        async with self._sm() as s:
            body = await s.scalar(
                select(TrustedDocument.body).where(TrustedDocument.hash == document_hash)
            )
        if body is not None:
            self._bodies.put(document_hash, body)
        return body

    async def save(self, text: str) -> str:
        """Store a document (idempotent); its hash."""
        digest = sha256_hex(text)
        canonical = self.canonical(text) or digest
        async with self._sm.begin() as s:
            await s.execute(
                insert(TrustedDocument)
                .values(hash=digest, canonical_hash=canonical, body=text, created_at=self._clock())
                .on_conflict_do_nothing()
            )
        self._bodies.put(digest, text)
        return digest

    async def register_for_app(self, app_id: uuid.UUID, texts: list[str]) -> list[str]:
        hashes = [await self.save(t) for t in texts]
        now = self._clock()
        async with self._sm.begin() as s:
            for text, digest in zip(texts, hashes, strict=True):
                await s.execute(
                    insert(PartnerDocument)
                    .values(
                        app_id=app_id,
                        document_hash=digest,
                        canonical_hash=self.canonical(text) or digest,
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                )
        return hashes

    async def app_document(self, app_id: uuid.UUID, document_hash: str) -> bool:
        """Whether the app may run the document with this exact hash."""
        key = f"{app_id}:{document_hash}"
        if self._partner.get_fresh(key) is not None:
            return True
        async with self._sm() as s:
            found = await s.scalar(
                select(PartnerDocument.document_hash).where(
                    PartnerDocument.app_id == app_id,
                    PartnerDocument.document_hash == document_hash,
                )
            )
        if found is not None:
            self._partner.put(key, found)
        return found is not None

    async def app_allows_text(self, app_id: uuid.UUID, text: str) -> bool:
        """Whether a document sent as text is one registered for the app (same operation)."""
        canonical = self.canonical(text)
        if canonical is None:
            return False
        key = f"{app_id}:c:{canonical}"
        if self._partner.get_fresh(key) is not None:
            return True
        async with self._sm() as s:
            found = await s.scalar(
                select(PartnerDocument.document_hash)
                .where(
                    PartnerDocument.app_id == app_id,
                    PartnerDocument.canonical_hash == canonical,
                )
                .limit(1)
            )
        if found is not None:
            self._partner.put(key, found)
        return found is not None

    async def app_documents(self, app_id: uuid.UUID) -> list[TrustedDocument]:
        async with self._sm() as s:
            rows = await s.scalars(
                select(TrustedDocument)
                .join(PartnerDocument, PartnerDocument.document_hash == TrustedDocument.hash)
                .where(PartnerDocument.app_id == app_id)
                .order_by(PartnerDocument.created_at, TrustedDocument.hash)
            )
            return list(rows)
