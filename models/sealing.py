"""Whole-table passes over sealed columns: moving legacy plaintext in, and re-encryption.

Every column named ``<name>_sealed`` in the models is a sealed column (models/envelope.py), its
associated data ``"<table>.<name>"``; both passes find them from the metadata, so a table added
later is covered without anyone remembering to.

- :func:`seal_legacy` (run by ``bourse migrate`` and ``bourse up`` after the migrations): values
  written before migration 0021 (plaintext phone, date of birth and address; Fernet-encrypted
  TOTP secrets) are sealed into their new columns and the old ones emptied, row by row.
- :func:`seal_legacy_transfers` (run beside it): payment methods written before migration 0028
  are sealed with their blind index, their idempotency fingerprints re-keyed, and a corporate
  action's label moved to ``memo``.
- :func:`reencrypt` (``bourse keys rotate --reencrypt``): every value sealed under an older
  data key is re-sealed under the current one, 500 at a time in one statement, with a
  compare-and-set on the old value, so a customer's concurrent change is never overwritten and
  the platform keeps serving throughout.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Column, Table, and_, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.base import Base
from models.envelope import FieldCipher, sealed_column_context
from models.funds import (
    METHOD_COLUMN,
    FundTransaction,
    TransactionType,
    keyed_fingerprint,
    legacy_fingerprint,
)
from models.security import SecretBox
from models.users import (
    ADDRESS_COLUMN,
    DATE_OF_BIRTH_COLUMN,
    PHONE_COLUMN,
    TOTP_COLUMN,
    TOTP_PENDING_COLUMN,
    User,
)

BATCH = 500


@dataclass(frozen=True, slots=True)
class SealedColumn:
    table: Table
    column: Column[Any]
    context: str


def sealed_columns() -> list[SealedColumn]:
    found: list[SealedColumn] = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith("_sealed"):
                context = sealed_column_context(table.name, column.name)
                found.append(SealedColumn(table, column, context))
    return found


async def seal_legacy(
    sessionmaker: async_sessionmaker[AsyncSession], fields: FieldCipher, box: SecretBox
) -> int:
    """Seal the users' pre-0021 values; returns how many users were changed."""
    legacy = or_(
        User.legacy_phone_number.is_not(None),
        User.legacy_date_of_birth.is_not(None),
        User.legacy_address.is_not(None),
        User.legacy_totp_secret_enc.is_not(None),
        User.legacy_totp_pending_secret_enc.is_not(None),
    )
    changed = 0
    while True:
        async with sessionmaker.begin() as s:
            users = list(
                await s.scalars(
                    select(User).where(legacy).limit(BATCH).with_for_update(skip_locked=True)
                )
            )
            for user in users:
                await _seal_user(user, fields, box)
            changed += len(users)
        if len(users) < BATCH:
            return changed


async def seal_legacy_transfers(
    sessionmaker: async_sessionmaker[AsyncSession], fields: FieldCipher
) -> int:
    """Seal the payment methods written before 0028; returns how many rows were changed."""
    legacy = or_(
        FundTransaction.legacy_payment_method.is_not(None),
        FundTransaction.legacy_withdrawal_method.is_not(None),
    )
    changed = 0
    while True:
        async with sessionmaker.begin() as s:
            rows = list(
                await s.scalars(
                    select(FundTransaction)
                    .where(legacy)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for txn in rows:
                await _seal_transfer(txn, fields)
            changed += len(rows)
        if len(rows) < BATCH:
            return changed


async def _seal_transfer(txn: FundTransaction, fields: FieldCipher) -> None:
    method = txn.legacy_payment_method or txn.legacy_withdrawal_method
    assert method is not None
    txn.legacy_payment_method = txn.legacy_withdrawal_method = None
    if txn.type not in (TransactionType.DEPOSIT, TransactionType.WITHDRAWAL):
        txn.memo = method  # a corporate action's label
        return
    txn.method_sealed = await fields.seal(method, column=METHOD_COLUMN, row=txn.id)
    txn.method_bidx = await fields.blind_index(method, column=METHOD_COLUMN)
    if txn.request_fingerprint == legacy_fingerprint(txn.type, txn.amount, txn.currency, method):
        txn.request_fingerprint = await keyed_fingerprint(
            fields, txn.type, txn.amount, txn.currency, method
        )


async def _seal_user(user: User, fields: FieldCipher, box: SecretBox) -> None:
    if user.legacy_phone_number is not None:
        user.phone_sealed = await fields.seal(
            user.legacy_phone_number, column=PHONE_COLUMN, row=user.id
        )
        user.legacy_phone_number = None
    if user.legacy_date_of_birth is not None:
        born: date = user.legacy_date_of_birth
        user.date_of_birth_sealed = await fields.seal(
            str(born), column=DATE_OF_BIRTH_COLUMN, row=user.id
        )
        user.legacy_date_of_birth = None
    if user.legacy_address is not None:
        user.address_sealed = await fields.seal(
            user.legacy_address, column=ADDRESS_COLUMN, row=user.id
        )
        user.legacy_address = None
    if user.legacy_totp_secret_enc is not None:
        secret = box.decrypt(user.legacy_totp_secret_enc)
        user.totp_secret_sealed = await fields.seal(secret, column=TOTP_COLUMN, row=user.id)
        user.legacy_totp_secret_enc = None
    if user.legacy_totp_pending_secret_enc is not None:
        pending = box.decrypt(user.legacy_totp_pending_secret_enc)
        user.totp_pending_secret_sealed = await fields.seal(
            pending, column=TOTP_PENDING_COLUMN, row=user.id
        )
        user.legacy_totp_pending_secret_enc = None


async def _write_batch(
    s: AsyncSession, sealed: SealedColumn, rows: Sequence[tuple[tuple[Any, ...], bytes, bytes]]
) -> int:
    """Write a batch of re-sealed values, each only if the row still holds the value it was
    made from (compare-and-set: a customer's change meanwhile wins). One statement per batch
    (UPDATE … FROM unnest) for a single-column key; row by row for a composite one."""
    if not rows:
        return 0
    table, column = sealed.table, sealed.column
    keys = list(table.primary_key.columns)
    if len(keys) == 1:
        key = keys[0]
        key_type = key.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
        statement = text(
            f'UPDATE "{table.name}" AS t SET "{column.name}" = v.new '  # noqa: S608 - names from metadata
            f"FROM unnest(CAST(:keys AS {key_type}[]), CAST(:olds AS bytea[]), "
            "CAST(:news AS bytea[])) AS v(key, old, new) "
            f'WHERE t."{key.name}" = v.key AND t."{column.name}" = v.old'
        )
        result = await s.execute(
            statement,
            {
                "keys": [pk[0] for pk, _, _ in rows],
                "olds": [old for _, old, _ in rows],
                "news": [new for _, _, new in rows],
            },
        )
        return int(getattr(result, "rowcount", 0))
    count = 0
    for pk, old, new in rows:
        match = and_(*(k == v for k, v in zip(keys, pk, strict=True)))
        result = await s.execute(
            update(table).where(match, column == old).values({column.name: new})
        )
        count += int(getattr(result, "rowcount", 0))
    return count


def _dek_of(column: Column[Any]) -> Any:
    """SQL: the data-key id bytes of a sealed value (bytes 2 to 5 of its header)."""
    return func.substring(column, 2, 4)


async def reencrypt(
    sessionmaker: async_sessionmaker[AsyncSession], fields: FieldCipher
) -> dict[str, int]:
    """Re-seal every value not under the current field key; ``table.column`` → count."""
    current = struct.pack(">I", await fields.active_key_id())
    done: dict[str, int] = {}
    for sealed in sealed_columns():
        table, column = sealed.table, sealed.column
        keys = list(table.primary_key.columns)
        stale = and_(column.is_not(None), _dek_of(column) != current)
        count = 0
        after: tuple[Any, ...] | None = None
        while True:
            query = select(*keys, column).where(stale).order_by(*keys).limit(BATCH)
            if after is not None:
                query = query.where(tuple_(*keys) > tuple_(*after))
            async with sessionmaker.begin() as s:
                rows = list(await s.execute(query))
                resealed: list[tuple[tuple[Any, ...], bytes, bytes]] = []
                for row in rows:
                    *pk, old = row
                    row_key = ",".join(str(v) for v in pk)
                    plain = await fields.open(old, column=sealed.context, row=row_key)
                    new = await fields.seal(plain, column=sealed.context, row=row_key)
                    resealed.append((tuple(pk), old, new))
                count += await _write_batch(s, sealed, resealed)
            if len(rows) < BATCH:
                break
            after = tuple(rows[-1][: len(keys)])
        done[sealed.context] = count
    return done
