"""Trusted documents on `POST /graphql` (persisted queries; API.md section 12, issue 18 item 1).

A request names its document in one of three ways: the text (`query`), the GraphQL-over-HTTP
trusted-document form `{"documentId": "sha256:<64 hex>"}`, or Apollo's APQ
`extensions.persistedQuery.sha256Hash` (with the text beside it to register it). What runs:

- mode "any" (development, tests): every document; an APQ hash with its text registers the
  text in the store (PostgreSQL, shared by every API process), a hash alone runs what the store
  or the web client's manifest holds, else `PERSISTED_QUERY_NOT_FOUND` (the client then resends
  the text, as Apollo's protocol says);
- mode "trusted" (production): a partner app's token runs only the documents ADMIN registered
  for that app; every other caller (the web and mobile apps, API keys, anonymous) only the web
  client's manifest, written by its build (`frontend-bff/web/dist/persisted-documents.json`);
  a signed-in SUPPORT/ADMIN session anything (the GraphiQL console). A document sent as text is
  recognised when it is the same operation as a trusted one (compared as graphql-core prints
  them, so whitespace and comments do not matter: urql sends its own spacing). Anything else:
  `PERSISTED_QUERY_NOT_ALLOWED`; an id nobody registered: `PERSISTED_QUERY_NOT_FOUND`.

Parsing and validation are cached by the schema's `ParserCache` / `ValidationCache` keyed by the
resolved text; the store's lookups are cached per process (ids are content hashes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import structlog
from graphql import ExecutionResult, GraphQLError
from strawberry.http import GraphQLRequestData

from models.partners import Caller
from models.partners.documents import TrustedDocumentStore, canonical_hash, sha256_hex
from models.users import STAFF_ROLES

log = structlog.get_logger("bff.trusted_documents")

MANIFEST_NAME = "persisted-documents.json"
DOCUMENT_ID = "bourse.documentId"  # where the view carries `documentId` into the request data
_HEX = re.compile(r"[0-9a-f]{64}")
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"


class Manifest:
    """The web client's documents, as its build wrote them (`sha256:<hex>` -> text)."""

    def __init__(self, documents: dict[str, str]) -> None:
        self.by_hash = documents
        self.canonical = {c for c in (canonical_hash(t) for t in documents.values()) if c}

    @classmethod
    def load(cls, dist: Path) -> Manifest:
        path = dist / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            log.warning("no web client manifest: apps cannot query in trusted mode", path=str(path))
            return cls({})
        documents: dict[str, str] = {}
        for key, text in raw.items():
            digest = key.removeprefix("sha256:")
            if sha256_hex(text) != digest:
                raise ValueError(f"{path}: {key} is not the hash of its document")
            documents[digest] = text
        return cls(documents)


def refusal(code: str, message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


class DocumentGate:
    def __init__(self, manifest: Manifest, store: TrustedDocumentStore, trusted_only: bool):
        self.manifest = manifest
        self.store = store
        self.trusted_only = trusted_only

    def _staff_session(self, caller: Caller) -> bool:
        p = caller.principal
        return p is not None and p.scopes is None and p.app_id is None and p.role in STAFF_ROLES

    async def admit(self, data: GraphQLRequestData, caller: Caller) -> ExecutionResult | None:
        """Resolve the request's document into `data.query`, or the refusal to answer."""
        if caller.limited:
            return refusal("RATE_LIMITED", "This credential's request limit is reached: wait.")
        extensions = dict(data.extensions or {})
        document_id = extensions.pop(DOCUMENT_ID, None)
        apq = extensions.get("persistedQuery")
        data.extensions = extensions or None
        digest: str | None = None
        if document_id is not None:
            if not isinstance(document_id, str) or not (
                document_id.startswith("sha256:") and _HEX.fullmatch(document_id[7:])
            ):
                return refusal(NOT_FOUND, 'documentId must be "sha256:" and 64 hex digits.')
            digest = document_id[7:]
        elif isinstance(apq, dict) and "sha256Hash" in apq:
            value = apq.get("sha256Hash")
            if not isinstance(value, str) or not _HEX.fullmatch(value):
                return refusal(NOT_FOUND, "persistedQuery.sha256Hash must be 64 hex digits.")
            digest = value
        if digest is None:
            if data.query is None or not self.trusted_only:
                return None
            return await self._check_text(data.query, caller)
        if data.query is not None:  # an APQ registration: the text beside its hash
            if sha256_hex(data.query) != digest:
                return refusal("BAD_USER_INPUT", "The hash is not the SHA-256 of the query.")
            if not self.trusted_only:
                if self.store.canonical(data.query) is not None:  # only documents that parse
                    await self.store.save(data.query)
                return None
            return await self._check_text(data.query, caller)
        body, known = await self._lookup(digest, caller)
        if body is None:
            if known:
                return refusal(NOT_ALLOWED, "This document is not trusted for this client.")
            return refusal(NOT_FOUND, "No document with this id: send the query text.")
        data.query = body
        return None

    async def _lookup(self, digest: str, caller: Caller) -> tuple[str | None, bool]:
        """(the text to run, whether the id is known at all)."""
        anywhere = self.manifest.by_hash.get(digest) or await self.store.body(digest)
        if not self.trusted_only or self._staff_session(caller):
            return anywhere, anywhere is not None
        if caller.app_id is not None:
            if await self.store.app_document(caller.app_id, digest):
                return anywhere, True
            return None, anywhere is not None
        return self.manifest.by_hash.get(digest), anywhere is not None

    async def _check_text(self, text: str, caller: Caller) -> ExecutionResult | None:
        if self._staff_session(caller):
            return None
        if caller.app_id is not None:
            if await self.store.app_allows_text(caller.app_id, text):
                return None
        elif self.store.canonical(text) in self.manifest.canonical:
            return None
        return refusal(NOT_ALLOWED, "Only trusted documents run here: send a registered id.")
