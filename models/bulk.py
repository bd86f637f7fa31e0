"""Set-based writes: many rows in ONE statement, as PostgreSQL arrays through ``unnest``.

``INSERT … SELECT FROM unnest($1::uuid[], $2::numeric[], …)`` and ``UPDATE … FROM unnest(…)``
send each column as one array parameter, so the statement text is the same whatever the number
of rows: asyncpg prepares it once per connection, and a batch of a thousand rows costs one round
trip. SQLAlchemy's executemany ("insertmanyvalues") would render a new statement per row count.

Column names and types come from code, never from input. Enum columns are sent as ``text[]``
and cast in SQL (``("side", "order_side")`` below casts through text), so asyncpg needs no
introspection of our enum types.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

# PostgreSQL types that asyncpg encodes from Python values directly; any other type name is an
# enum of ours, sent as text and cast.
_NATIVE = frozenset({"uuid", "text", "numeric", "timestamptz", "bigint", "integer", "boolean"})

Columns = Sequence[tuple[str, str]]  # (column, PostgreSQL type)


def _array(name: str, pg_type: str) -> str:
    if pg_type in _NATIVE:
        return f"CAST(:{name} AS {pg_type}[])"
    return f"CAST(CAST(:{name} AS text[]) AS {pg_type}[])"


def _unnest(columns: Columns, alias: str) -> str:
    arrays = ", ".join(_array(name, pg_type) for name, pg_type in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({arrays}) WITH ORDINALITY AS {alias}({names}, ord)"


@lru_cache(maxsize=128)
def _insert_sql(
    table: str,
    columns: tuple[tuple[str, str], ...],
    suffix: str,
    derived: tuple[tuple[str, str], ...] = (),
    join: str = "",
) -> TextClause:
    targets = ", ".join([*(name for name, _ in columns), *(name for name, _ in derived)])
    values = ", ".join([*(f"r.{name}" for name, _ in columns), *(expr for _, expr in derived)])
    # Identifiers, expressions and suffixes come from our code only; every value is a bound
    # parameter.
    sql = f"INSERT INTO {table} ({targets}) SELECT {values} FROM {_unnest(columns, 'r')} {join} "  # noqa: S608
    return text(sql + f"ORDER BY r.ord {suffix}")


@lru_cache(maxsize=128)
def _update_sql(
    table: str, key: str, columns: tuple[tuple[str, str], ...], assignments: str, match: str
) -> TextClause:
    unnested = _unnest(columns, "d")
    key = f"{key} = d.{key}" + (f" AND {match}" if match else "")
    # Identifiers and assignments come from our code only; every value is a bound parameter.
    return text(f"UPDATE {table} AS t SET {assignments} FROM {unnested} WHERE t.{key}")  # noqa: S608


def _params(columns: Columns, rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    params: dict[str, list[Any]] = {name: [] for name, _ in columns}
    lists = [params[name] for name, _ in columns]
    for row in rows:
        for values, value in zip(lists, row, strict=True):
            values.append(value)
    return params


async def insert_rows(
    s: AsyncSession,
    table: str,
    columns: Columns,
    rows: Sequence[Sequence[Any]],
    *,
    suffix: str = "",
    derived: Sequence[tuple[str, str]] = (),
    join: str = "",
) -> Result[Any] | None:
    """Insert ``rows`` (tuples in ``columns`` order) in one statement, in the rows' order (so
    identity columns follow it); ``suffix`` adds e.g. ``ON CONFLICT … RETURNING …``. ``derived``
    adds columns computed in SQL (``(column, expression)``, the rows being ``r``), from tables
    ``join`` brings in (``LEFT JOIN prefs p ON p.user_id = r.user_id``). None when there is
    nothing to insert."""
    if not rows:
        return None
    sql = _insert_sql(table, tuple(columns), suffix, tuple(derived), join)
    return await s.execute(sql, _params(columns, rows))


async def update_rows(
    s: AsyncSession,
    table: str,
    key: str,
    columns: Columns,
    rows: Sequence[Sequence[Any]],
    assignments: str,
    *,
    match: str = "",
) -> None:
    """``UPDATE table AS t SET <assignments> FROM unnest(...) AS d WHERE t.key = d.key``: one
    statement for every row; ``assignments`` refers to the new values as ``d.<column>`` (e.g.
    ``"held = t.held + d.held"``). The first column must be ``key``; ``match`` adds conditions
    for a composite key (``"t.asset_id = d.asset_id"``); the rows' keys must be distinct
    (PostgreSQL applies one row per target)."""
    if not rows:
        return
    if columns[0][0] != key:
        raise ValueError(f"the first column of an update is its key ({key})")
    sql = _update_sql(table, key, tuple(columns), assignments, match)
    await s.execute(sql, _params(columns, rows))
