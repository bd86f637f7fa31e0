"""Relay connection pieces shared by every domain (keyset cursors, `first` capped at 100)."""

from __future__ import annotations

import strawberry


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
