"""The one keyset cursor codec and page shape behind every Relay connection.

A cursor is opaque to clients: URL-safe base64 of the sort key's parts joined by ``|``
(``created_at.isoformat()|id`` for most lists, the symbol for assets). A cursor that does not
decode is ``INVALID_INPUT`` on the field ``after``, never an internal error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from models.errors import DomainError, ErrorCode

T = TypeVar("T")
K = TypeVar("K")

MAX_PAGE = 100  # `first` is capped here (API.md section 1)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool


def _bad_cursor() -> DomainError:
    return DomainError.one(ErrorCode.INVALID_INPUT, "Not a valid cursor.", "after")


def encode_cursor(*parts: object) -> str:
    text = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(text.encode()).decode()


def cursor_parts(cursor: str, count: int) -> list[str]:
    """The ``count`` parts of a cursor, or INVALID_INPUT on field ``after``."""
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", count - 1)
    except (ValueError, binascii.Error, UnicodeError):
        raise _bad_cursor() from None
    if len(parts) != count:
        raise _bad_cursor()
    return parts


def decode_cursor(cursor: str, parse: Callable[[str], K]) -> tuple[datetime, K]:
    """(timestamp, key) from a ``encode_cursor(at, key)`` cursor, or INVALID_INPUT."""
    raw, ident = cursor_parts(cursor, 2)
    try:
        at, key = datetime.fromisoformat(raw), parse(ident)
    except ValueError:
        raise _bad_cursor() from None
    if at.tzinfo is None:
        raise _bad_cursor()
    return at, key


def page_size(first: int | None, default: int = 20, cap: int = MAX_PAGE) -> int:
    limit = default if first is None else first
    if limit < 0:
        raise DomainError.one(ErrorCode.INVALID_INPUT, "first must not be negative.", "first")
    return min(limit, cap)
