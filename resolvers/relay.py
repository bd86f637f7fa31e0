"""Relay connection pieces shared by every domain (keyset cursors, `first` capped at 100)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import strawberry


class _Edge(Protocol):
    @property
    def cursor(self) -> str: ...


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page_info(edges: Sequence[_Edge], has_next_page: bool) -> PageInfo:
    return PageInfo(has_next_page=has_next_page, end_cursor=edges[-1].cursor if edges else None)
