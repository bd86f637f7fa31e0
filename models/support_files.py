"""Support attachments: one small storage interface, the object store behind it.

Where S3 is configured (``BOURSE_S3_BUCKET``: always under ``bourse up`` and in the tests, which
start the embedded store), the bytes go to the documents' bucket under
``support/<ticket>/<attachment>`` (private, server-side encrypted: ``models.storage``) through
`ObjectStoreAttachments`, and the row keeps only the metadata and the object's key. A process
without S3 keeps them in `support_attachments.data` (`bytea`) through `PostgresAttachments`;
reads follow the row, so both kinds of row stay readable. The type is decided by the content,
never by the name or the declared type: PNG, JPEG, GIF, WebP and PDF are accepted (`sniff`),
anything else is UNSUPPORTED_ATTACHMENT; at most `MAX_ATTACHMENT_BYTES` (10 MB), else
ATTACHMENT_TOO_LARGE. Files are always served as downloads (`Content-Disposition: attachment`,
`nosniff`, a sandbox CSP: see `bff.support_files`), never rendered inline as HTML.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.storage import ObjectStore
from models.support_tables import SupportAttachment

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    id: uuid.UUID
    ticket_id: uuid.UUID
    user_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    created_at: datetime


def sniff(data: bytes) -> str | None:
    """The content type by magic bytes, for the accepted kinds only."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def safe_filename(raw: str | None, content_type: str) -> str:
    """A name safe for a Content-Disposition header, with the extension its content has."""
    stem = _UNSAFE_NAME.sub("_", (raw or "").strip()).strip("._ ")[:150] or "attachment"
    ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
           "image/webp": ".webp", "application/pdf": ".pdf"}[content_type]  # fmt: skip
    base = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{base}{ext}"


class AttachmentStore(Protocol):
    async def put(self, s: AsyncSession, meta: AttachmentMeta, uploader: uuid.UUID,
                  data: bytes) -> None: ...  # fmt: skip

    async def meta(self, attachment_id: uuid.UUID) -> AttachmentMeta | None: ...

    async def read(self, attachment_id: uuid.UUID) -> bytes | None: ...


class PostgresAttachments:
    """Attachments as `bytea` rows (the object store's stand-in)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def put(
        self, s: AsyncSession, meta: AttachmentMeta, uploader: uuid.UUID, data: bytes
    ) -> None:
        s.add(
            SupportAttachment(
                id=meta.id, ticket_id=meta.ticket_id, user_id=meta.user_id,
                uploader_id=uploader, filename=meta.filename, content_type=meta.content_type,
                size=meta.size, data=data, created_at=meta.created_at,
            )
        )  # fmt: skip
        await s.flush()

    async def meta(self, attachment_id: uuid.UUID) -> AttachmentMeta | None:
        async with self._sm() as s:
            row = (
                await s.execute(
                    select(
                        SupportAttachment.id, SupportAttachment.ticket_id,
                        SupportAttachment.user_id, SupportAttachment.filename,
                        SupportAttachment.content_type, SupportAttachment.size,
                        SupportAttachment.created_at,
                    ).where(SupportAttachment.id == attachment_id)
                )
            ).one_or_none()  # fmt: skip
        return AttachmentMeta(*row) if row else None

    async def read(self, attachment_id: uuid.UUID) -> bytes | None:
        async with self._sm() as s:
            row = (
                await s.execute(
                    select(SupportAttachment.data, SupportAttachment.object_key).where(
                        SupportAttachment.id == attachment_id
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        if row.object_key is not None:
            return await self._object(row.object_key)
        data: bytes | None = row.data
        return data

    async def _object(self, key: str) -> bytes | None:
        return None  # no object store in this process: rows with a key cannot be read here


class ObjectStoreAttachments(PostgresAttachments):
    """Attachments in the object store; the row holds the metadata and the key."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore) -> None:
        super().__init__(sessionmaker)
        self._store = store

    @staticmethod
    def key(meta: AttachmentMeta) -> str:
        return f"support/{meta.ticket_id}/{meta.id}"

    async def put(
        self, s: AsyncSession, meta: AttachmentMeta, uploader: uuid.UUID, data: bytes
    ) -> None:
        # The object first: if the row's transaction then fails, an unreferenced private
        # object is left (harmless), never a row whose bytes are missing.
        key = self.key(meta)
        await self._store.put(key, data, meta.content_type)
        s.add(
            SupportAttachment(
                id=meta.id, ticket_id=meta.ticket_id, user_id=meta.user_id,
                uploader_id=uploader, filename=meta.filename, content_type=meta.content_type,
                size=meta.size, data=None, object_key=key, created_at=meta.created_at,
            )
        )  # fmt: skip
        await s.flush()

    async def _object(self, key: str) -> bytes | None:
        return await self._store.get(key)
