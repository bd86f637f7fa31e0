"""Who calls the REST facade, and what they may do: the GraphQL rules, not a copy of them.

The bearer token is resolved by `models.partners` (a session, an API key, a partner token);
each route names the GraphQL field it mirrors, so the scope a key needs comes from
`resolvers.scopes` and the roles from the same permission class the field declares
(`MayMoveMoney`: SUPPORT staff may not trade or move money). Routes that change something
count against the same per-user and per-address limits as mutations (`models.rate_limits`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from bff.rest.problems import ProblemError
from models.accounts import ClientInfo, Principal
from models.audit import Entry
from models.partners import Caller
from models.services import Services
from models.users import Role
from resolvers.context import bearer
from resolvers.scopes import allows


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def client_of(request: Request) -> ClientInfo:
    host = request.client.host if request.client else None
    return ClientInfo(ip=host, user_agent=request.headers.get("user-agent"))


async def caller_of(request: Request) -> Caller:
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is None:
        token = bearer(request.headers.get("authorization"))
        cached = await services_of(request).partners.caller(token)
        request.state.caller = cached
    if cached.limited:
        raise ProblemError("RATE_LIMITED", "This credential's request limit is reached: wait.")
    return cached


async def count_mutation(request: Request, principal: Principal | None) -> None:
    """The mutation rate limits (per user, per address), as `@mutation` applies them."""
    user_id = str(principal.user_id) if principal else None
    if not await services_of(request).rate_limits.allow(user_id, client_of(request).ip):
        raise ProblemError("RATE_LIMITED", "Too many requests in a minute: wait a little.")


# Documents the scheme in the OpenAPI document; the token itself is read by `caller_of`.
BEARER = HTTPBearer(auto_error=False, description="A sign-in token, an API key or an OAuth token.")


def signed_in(
    root: str, field: str, roles: frozenset[Role] | None = None, *, mutates: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, held to the rules of GraphQL's `root.field`."""

    async def dependency(
        request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Security(BEARER),
    ) -> Principal:
        principal = (await caller_of(request)).principal
        if principal is None:
            raise ProblemError("UNAUTHENTICATED", "Send a valid token: Authorization: Bearer.")
        if roles is not None and principal.role not in roles:
            raise ProblemError("FORBIDDEN", "Your role may not do this.")
        if principal.scopes is not None and not allows(principal.scopes, root, field):
            raise ProblemError("FORBIDDEN", "This credential's scopes do not allow it.")
        if mutates:
            await count_mutation(request, principal)
        return principal

    return dependency


def own(principal: Principal, user_id: str | None, field: str = "userId") -> None:
    """A `{userId}` (or body `userId`) must be the caller's: anyone else's does not exist."""
    if user_id is None:
        return
    try:
        mine = uuid.UUID(user_id) == principal.user_id
    except ValueError:
        mine = False
    if not mine:
        raise ProblemError("NOT_FOUND", "No such user.", field=field)


async def audited(
    request: Request,
    action: str,
    actor: uuid.UUID | None,
    subject: uuid.UUID | None,
    outcome: str,
) -> None:
    """The audit event GraphQL's `@mutation(audit=...)` records for the same act."""
    await services_of(request).audit.record(
        Entry(
            action=action,
            outcome=outcome[:200],
            actor_id=actor,
            subject_id=subject,
            request_id=getattr(request.state, "request_id", None),
            ip=client_of(request).ip,
        )
    )
