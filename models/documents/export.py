"""The data export (GDPR article 15, CCPA right to know): everything the platform holds about
one user, as a ZIP of JSON files, one per table.

Generic on purpose, so a table added later is exported without anyone remembering to: every
table with a `user_id` column gives that user's rows, and the `users` row is theirs by `id`.
What is left out, and why:
- credentials: columns ending in `_hash` or `_enc`, the TOTP secrets and blind indexes
  (`_bidx`), webhook signing secrets (`CREDENTIAL_COLUMNS`: shown once, as keys are), and
  the tables that hold nothing else (reset tokens, email-change tokens, recovery codes);
Sealed personal data (`<name>_sealed`, models/envelope.py) is opened and exported as `<name>`.
- other people: any other column referring to `users.id` (a support agent's id, a counterparty's
  id), and from `fills`, which pair two users, only the user's own side;
- staff's internal notes on support tickets;
- compliance cases (`compliance_cases`): telling a customer of an AML investigation is
  prohibited (tipping off, 31 U.S.C. 5318(g)(2)); the KYC profile they gave is exported.
Every model module is imported by the time this runs (the worker opens the whole `Services`),
so `Base.metadata` knows every table.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Column, Table, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import Base
from models.envelope import FieldCipher, sealed_column_context
from models.orders.tables import Fill

LEFT_OUT_TABLES = frozenset(
    {"password_reset_tokens", "email_change_requests", "recovery_codes", "compliance_cases"}
)


def _json(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


CREDENTIAL_COLUMNS = frozenset({"webhook_endpoints.secret_sealed"})
"""Sealed columns that hold a credential, not personal data: never exported."""


def _kept(table: Table, column: Column[Any]) -> bool:
    name = column.name
    if name.endswith(("_hash", "_enc", "_bidx")) or name.startswith("totp_"):
        return False
    if f"{table.name}.{name}" in CREDENTIAL_COLUMNS:
        return False
    refers_to_users = any(fk.column.table.name == "users" for fk in column.foreign_keys)
    return not (refers_to_users and name != "user_id")


async def _rows(
    s: AsyncSession, fields: FieldCipher, table: Table, user_id: uuid.UUID
) -> list[dict[str, object]]:
    columns = [c for c in table.columns if _kept(table, c)]
    owner = table.c.id if table.name == "users" else table.c.user_id
    query = select(*columns).where(owner == user_id)
    if table.name == "support_messages":
        query = query.where(table.c.internal.is_(False))
    if "created_at" in table.c:
        query = query.order_by(table.c.created_at)
    rows: list[dict[str, object]] = []
    keys = [c.name for c in table.primary_key.columns]
    for row in await s.execute(query.add_columns(*table.primary_key.columns)):
        mapping = dict(row._mapping)
        row_key = ",".join(str(mapping[k]) for k in keys)
        out: dict[str, object] = {}
        for key, value in row._mapping.items():
            if key.endswith("_sealed"):
                context = sealed_column_context(table.name, key)
                key = key.removesuffix("_sealed")
                value = await fields.open_optional(value, column=context, row=row_key)
            if value is None and out.get(key) is not None:
                continue  # an emptied pre-encryption column beside its sealed successor
            out[key] = _json(value)
        rows.append(out)
    return rows


async def _own_fills(s: AsyncSession, user_id: uuid.UUID) -> list[dict[str, object]]:
    mine = Fill.maker_user_id == user_id
    query = (
        select(
            Fill.id,
            Fill.asset_id,
            Fill.price,
            Fill.quantity,
            Fill.value,
            Fill.currency,
            Fill.executed_at,
            case((mine, Fill.maker_order_id), else_=Fill.taker_order_id).label("order_id"),
            case((mine, "MAKER"), else_="TAKER").label("role"),
        )
        .where(or_(mine, Fill.taker_user_id == user_id))
        .order_by(Fill.executed_at)
    )
    return [{k: _json(v) for k, v in row._mapping.items()} for row in await s.execute(query)]


async def build_export(
    s: AsyncSession, fields: FieldCipher, user_id: uuid.UUID
) -> dict[str, list[dict[str, object]]]:
    """Table name → the user's rows (as JSON-ready dicts)."""
    found: dict[str, list[dict[str, object]]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in LEFT_OUT_TABLES:
            continue
        if table.name == "users" or "user_id" in table.c:
            found[table.name] = await _rows(s, fields, table, user_id)
    found["fills"] = await _own_fills(s, user_id)
    return found


def export_zip(data: dict[str, list[dict[str, object]]], generated_at: datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        readme = (
            "Everything Bourse holds about you, one JSON file per kind of record, as of "
            f"{generated_at.isoformat()}. Passwords, tokens and codes are kept only as digests "
            "and are not included; other people's identities (a counterparty, a support agent) "
            "are left out.\n"
        )
        archive.writestr("README.txt", readme)
        for name, rows in sorted(data.items()):
            archive.writestr(f"{name}.json", json.dumps(rows, indent=1, ensure_ascii=False))
    return buffer.getvalue()
