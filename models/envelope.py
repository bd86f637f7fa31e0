"""Field-level envelope encryption of personal data at rest (issue 17 item 4).

Each sensitive column holds a sealed value: ``version (1) || data-key id (4, big-endian) ||
nonce (12) || AES-256-GCM ciphertext and tag``, with the column's name and the row's primary key
as associated data, so a value copied into another column, another table or another customer's
row does not open. Data keys (DEKs) are random
256-bit keys kept in ``data_keys`` only wrapped (AES-GCM) by a key encryption key (KEK); the KEKs
live outside the database, behind the small :class:`Kms` interface, which a cloud KMS (AWS KMS
``Encrypt``/``Decrypt``, GCP, Vault transit) can implement. The local KMS reads its key ring from
``BOURSE_KEK`` (``kid:base64url-key`` entries, comma-separated, the first the current one) or,
when that is unset, from ``var/kek`` (generated once, like the secret key).

Blind indexes (HMAC-SHA-256 under a separate index key, also wrapped) let the platform look a
value up (a tax id already used by another customer, a payment method seen before) without
decrypting every row.

Rotation (``bourse keys rotate``, :func:`rotate`): a new KEK joins the ring as the current one,
every data key is re-wrapped under it in one short transaction, and a fresh field DEK becomes
the one new values are sealed with. Running processes are not disturbed: a data key's material
never changes when it is re-wrapped, and a process that meets a DEK it has not loaded yet reads
it from the table. ``--reencrypt`` also re-seals every stored value under the new DEK, row by
row, so old DEKs end up wrapping nothing.

The primitives are the ``cryptography`` package's AESGCM and HMAC (well kept, audited); only the
framing and the key table are ours.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Boolean, Identity, Index, Integer, LargeBinary, String, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.settings import Settings
from models.base import Base

VERSION = 1
_HEADER = struct.Struct(">BI")  # version, data-key id
_NONCE = 12
FIELD = "field"  # purpose of the data keys values are sealed with
INDEX = "index"  # purpose of the one blind-index key
KEYS_LOCK = 0x6B657973  # pg_advisory_xact_lock key: "keys"


class DataKey(Base):
    __tablename__ = "data_keys"

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    rewrapped_at: Mapped[datetime | None]

    __table_args__ = (
        # At most one current key per purpose: two processes creating the first key at once
        # cannot both succeed.
        Index("uq_data_keys_active", "purpose", unique=True, postgresql_where=text("active")),
    )


def _aad(column: str, row: object) -> bytes:
    """Associated data: the column and the row's primary key. A value copied into another
    column, or swapped with another customer's, does not open."""
    return f"{column}\x00{row}".encode()


def sealed_column_context(table: str, column: str) -> str:
    """The associated data of sealed column ``<name>_sealed`` of ``table``: ``table.name``."""
    return f"{table}.{column.removesuffix('_sealed')}"


class SealError(Exception):
    """A sealed value cannot be opened: its data key or KEK is missing, or it was tampered
    with. A configuration error (wrong ``BOURSE_KEK``, lost ``var/kek``), never a user's."""


class Kms(Protocol):
    """Wraps and unwraps data keys under key encryption keys it alone holds."""

    def current_kek_id(self) -> str: ...

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        """(the id of the KEK used, the wrapped key)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes: ...


class LocalKms:
    """KEKs from a key ring held in process memory: ``{kid: 32-byte key}``, first current."""

    def __init__(self, ring: Sequence[tuple[str, bytes]]) -> None:
        if not ring:
            raise ValueError("a key ring needs at least one key encryption key")
        for kid, key in ring:
            if len(key) != 32 or not kid or ":" in kid or "," in kid:
                raise ValueError(f"key encryption key {kid!r} must be 32 bytes with a plain id")
        self._current = ring[0][0]
        self._keys = dict(ring)

    def current_kek_id(self) -> str:
        return self._current

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        aad = b"bourse-dek:" + self._current.encode()
        return self._current, nonce + AESGCM(self._keys[self._current]).encrypt(nonce, dek, aad)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:
            raise SealError(f"key encryption key {kek_id!r} is not in the key ring")
        try:
            aad = b"bourse-dek:" + kek_id.encode()
            return AESGCM(key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except InvalidTag as exc:
            raise SealError(f"data key does not unwrap under {kek_id!r}") from exc


def parse_ring(value: str) -> list[tuple[str, bytes]]:
    """``kid:base64url(32 bytes)[,kid:…]`` → the ring, first entry current."""
    ring: list[tuple[str, bytes]] = []
    for entry in value.replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        kid, sep, encoded = entry.partition(":")
        if not sep:
            raise ValueError("each key encryption key is written kid:base64url-key")
        ring.append((kid.strip(), base64.urlsafe_b64decode(encoded.strip() + "==")))
    return ring


def format_ring(ring: Sequence[tuple[str, bytes]]) -> str:
    return "\n".join(
        f"{kid}:{base64.urlsafe_b64encode(key).decode().rstrip('=')}" for kid, key in ring
    )


def new_kek(existing: Sequence[str]) -> tuple[str, bytes]:
    """A fresh KEK with an id not in ``existing``: ``k<n>`` counting up."""
    n = 1
    while f"k{n}" in existing:
        n += 1
    return f"k{n}", secrets.token_bytes(32)


class KeyRingFile:
    """The local key ring on disk (``var/kek``, mode 0600), for machines without a KMS."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_or_create(self) -> list[tuple[str, bytes]]:
        if self.path.exists():
            return parse_ring(self.path.read_text())
        ring = [new_kek([])]
        self.write(ring)
        return ring

    def write(self, ring: Sequence[tuple[str, bytes]]) -> None:
        """Atomically: a half-written ring would lose keys."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}-{secrets.token_hex(6)}")
        tmp.touch(mode=0o600)
        tmp.write_text(format_ring(ring) + "\n")
        os.replace(tmp, self.path)


@dataclass(frozen=True, slots=True)
class _Loaded:
    key: bytes
    purpose: str


class FieldCipher:
    """Seals and opens column values; one per process, data keys cached after first use."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], kms: Kms) -> None:
        self._sessionmaker = sessionmaker
        self.kms = kms
        self._keys: dict[int, _Loaded] = {}
        self._active: int | None = None
        self._index_key: bytes | None = None
        self._lock = asyncio.Lock()

    async def seal(self, value: str, *, column: str, row: object) -> bytes:
        """``value`` sealed for ``column`` of the row whose primary key is ``row``."""
        dek_id = self._active if self._active is not None else await self._ensure_active()
        nonce = os.urandom(_NONCE)
        body = AESGCM(self._keys[dek_id].key).encrypt(nonce, value.encode(), _aad(column, row))
        return _HEADER.pack(VERSION, dek_id) + nonce + body

    async def seal_optional(self, value: str | None, *, column: str, row: object) -> bytes | None:
        return None if value is None else await self.seal(value, column=column, row=row)

    async def open(self, sealed: bytes, *, column: str, row: object) -> str:
        version, dek_id = _HEADER.unpack_from(sealed)
        if version != VERSION:
            raise SealError(f"sealed value of unknown version {version}")
        loaded = self._keys.get(dek_id) or await self._load(dek_id)
        start = _HEADER.size
        try:
            plain = AESGCM(loaded.key).decrypt(
                sealed[start : start + _NONCE], sealed[start + _NONCE :], _aad(column, row)
            )
        except InvalidTag as exc:
            raise SealError(f"a sealed {column} does not open (tampered or moved)") from exc
        return plain.decode()

    async def open_optional(self, sealed: bytes | None, *, column: str, row: object) -> str | None:
        return None if sealed is None else await self.open(sealed, column=column, row=row)

    async def blind_index(self, value: str, *, column: str) -> bytes:
        """A deterministic keyed digest of ``value`` for equality lookups on ``column``."""
        key = self._index_key or await self._ensure_index_key()
        return hmac.new(key, column.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()

    async def active_key_id(self) -> int:
        """The data key new values are sealed with (as this process last read it)."""
        return self._active if self._active is not None else await self._ensure_active()

    async def _load(self, dek_id: int) -> _Loaded:
        async with self._sessionmaker() as s:
            row = await s.get(DataKey, dek_id)
        if row is None:
            raise SealError(f"data key {dek_id} does not exist")
        loaded = _Loaded(self.kms.unwrap(row.kek_id, row.wrapped), row.purpose)
        self._keys[dek_id] = loaded
        return loaded

    async def _ensure_active(self) -> int:
        async with self._lock:
            if self._active is None:
                row = await _current_key(self._sessionmaker, self.kms, FIELD)
                self._keys[row.id] = _Loaded(self.kms.unwrap(row.kek_id, row.wrapped), FIELD)
                self._active = row.id
            return self._active

    async def _ensure_index_key(self) -> bytes:
        async with self._lock:
            if self._index_key is None:
                row = await _current_key(self._sessionmaker, self.kms, INDEX)
                self._index_key = self.kms.unwrap(row.kek_id, row.wrapped)
            return self._index_key


async def _current_key(
    sessionmaker: async_sessionmaker[AsyncSession], kms: Kms, purpose: str
) -> DataKey:
    """The active key of ``purpose``, created on first use (serialised by an advisory lock)."""
    async with sessionmaker() as s, s.begin():
        found = await s.scalar(
            select(DataKey).where(DataKey.purpose == purpose, DataKey.active.is_(True))
        )
        if found is not None:
            return found
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEYS_LOCK})
        found = await s.scalar(
            select(DataKey).where(DataKey.purpose == purpose, DataKey.active.is_(True))
        )
        if found is None:
            found = _new_key(kms, purpose)
            s.add(found)
            await s.flush()
        return found


def _new_key(kms: Kms, purpose: str) -> DataKey:
    kek_id, wrapped = kms.wrap(secrets.token_bytes(32))
    return DataKey(
        purpose=purpose, kek_id=kek_id, wrapped=wrapped, active=True, created_at=utcnow()
    )


@dataclass(frozen=True, slots=True)
class RotationReport:
    kek_id: str
    rewrapped: int
    new_field_key: int


async def rewrap(sessionmaker: async_sessionmaker[AsyncSession], kms: Kms) -> RotationReport:
    """Re-wrap every data key under the KMS's current KEK and start a new field DEK. One
    transaction: the key table is small, and readers keep working throughout (the keys' material
    is unchanged; only how it is wrapped)."""
    current = kms.current_kek_id()
    async with sessionmaker() as s, s.begin():
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEYS_LOCK})
        rows = list(await s.scalars(select(DataKey).with_for_update()))
        rewrapped = 0
        for row in rows:
            if row.kek_id == current:
                continue
            row.kek_id, row.wrapped = kms.wrap(kms.unwrap(row.kek_id, row.wrapped))
            row.rewrapped_at = utcnow()
            rewrapped += 1
        await s.execute(
            update(DataKey)
            .where(DataKey.purpose == FIELD, DataKey.active.is_(True))
            .values(active=False)
        )
        fresh = _new_key(kms, FIELD)
        s.add(fresh)
        if not any(r.purpose == INDEX for r in rows):
            s.add(_new_key(kms, INDEX))
        await s.flush()
    return RotationReport(current, rewrapped, fresh.id)


class FileKms(LocalKms):
    """The local KMS over ``var/kek``: re-reads the file when it meets a KEK it does not know,
    so a rotation by ``bourse keys rotate`` on this machine reaches running processes."""

    def __init__(self, ring_file: KeyRingFile) -> None:
        self._file = ring_file
        super().__init__(ring_file.load_or_create())

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id not in self._keys:
            LocalKms.__init__(self, self._file.load_or_create())
        return super().unwrap(kek_id, wrapped)


def kms_for(settings: Settings) -> LocalKms:
    """``BOURSE_KEK`` when set (a KMS-held or injected ring), else the file ring in var/."""
    if settings.kek:
        return LocalKms(parse_ring(settings.kek))
    return FileKms(KeyRingFile(settings.var_dir / "kek"))
