"""Declared permissions: attach to fields, never hand-check inside resolvers.

Every class here extends `SignedInPermission`: it admits only a signed-in caller, so a mutation
declared with one (`resolvers.mutations.mutation`) is handed the caller's `Principal`.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from models.accounts import Principal
from models.users import COMPLIANCE_ROLES, STAFF_ROLES, Role
from resolvers.context import Context
from resolvers.errors import forbidden, unauthenticated
from resolvers.scopes import allows


class SignedInPermission(BasePermission):
    """A permission that lets through only a signed-in caller (UNAUTHENTICATED otherwise).

    A partner credential (API key, OAuth token) is also held to its scopes
    (`resolvers.scopes`): a field its scopes do not open is FORBIDDEN.
    """


def check_scopes(principal: Principal, info: Info[Context, Any]) -> None:
    if principal.scopes is not None and not allows(
        principal.scopes, info.path.typename or "", info.field_name
    ):
        raise forbidden("This credential's scopes do not allow it.")


class IsAuthenticated(SignedInPermission):
    message = "Sign in first: a valid access token is required."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        principal = await info.context.principal()
        if principal is None:
            raise unauthenticated()
        check_scopes(principal, info)
        return True


class _HasRole(SignedInPermission):
    roles: frozenset[Role] = frozenset()
    message = "Your role may not do this."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        principal = await info.context.principal()
        if principal is None:
            raise unauthenticated()
        if principal.role not in self.roles:
            raise forbidden()
        check_scopes(principal, info)
        return True


class IsStaff(_HasRole):
    roles = STAFF_ROLES


class IsAdmin(_HasRole):
    roles = frozenset({Role.ADMIN})


class IsCompliance(_HasRole):
    """The compliance queue and the audit log: COMPLIANCE and ADMIN (issue 17)."""

    roles = COMPLIANCE_ROLES


class MayMoveMoney(_HasRole):
    """Money-moving and trading mutations: customers (and ADMIN), never SUPPORT or COMPLIANCE
    staff, whose role is to help or to review, not to act on accounts (issue 19). They get
    FORBIDDEN."""

    roles = frozenset(Role) - {Role.SUPPORT, Role.COMPLIANCE}
