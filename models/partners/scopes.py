"""What a partner credential may do: four scopes, named as API.md section 12 names them.

A signed-in session (the web client) has no scopes: it may do everything its role may. A key
or an OAuth token carries scopes, and every operation it reaches names the one it needs
(`resolvers/scopes.py` for GraphQL, the REST facade's routes): an operation that names none is
refused to scoped credentials, so a new operation is closed to partners until it says which
scope opens it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from models.errors import DomainError, ErrorCode


class ApiScope(enum.StrEnum):
    READ_MARKET = "READ_MARKET"  # assets, prices, history, summary, news
    READ_ACCOUNT = "READ_ACCOUNT"  # profile, cash, orders, portfolio, transactions
    TRADE = "TRADE"  # place, replace and cancel orders
    FUNDS = "FUNDS"  # deposits and withdrawals


# OAuth2 scope strings (RFC 6749 section 3.3: space-separated tokens) for the same scopes.
OAUTH_NAMES: dict[ApiScope, str] = {
    ApiScope.READ_MARKET: "read:market",
    ApiScope.READ_ACCOUNT: "read:accounts",
    ApiScope.TRADE: "trade",
    ApiScope.FUNDS: "funds",
}
BY_OAUTH_NAME = {name: scope for scope, name in OAUTH_NAMES.items()}


def parse_scopes(values: Iterable[str], field: str = "scopes") -> frozenset[ApiScope]:
    """Scopes from their names (`TRADE`) or OAuth names (`trade`); INVALID_INPUT otherwise."""
    out: set[ApiScope] = set()
    for value in values:
        scope = BY_OAUTH_NAME.get(value)
        if scope is None:
            try:
                scope = ApiScope(value)
            except ValueError:
                raise DomainError.one(
                    ErrorCode.INVALID_SCOPE, f"Unknown scope {value[:40]!r}.", field
                ) from None
        out.add(scope)
    if not out:
        raise DomainError.one(ErrorCode.INVALID_SCOPE, "Name at least one scope.", field)
    return frozenset(out)


def oauth_scope_string(scopes: Iterable[str]) -> str:
    return " ".join(sorted(OAUTH_NAMES[ApiScope(s)] for s in scopes))
