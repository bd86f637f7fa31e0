"""The call an operation's body is handed, and root query fields that receive it.

A body is `async def name(self, call, ...arguments)`. Under a declared `SignedInPermission`
(`IsAuthenticated`, `IsStaff`, `IsAdmin`: run by Strawberry before the body) it gets
`SignedIn`, with the caller's `Principal` typed and resolved once per request; without a
permission it gets `Call`. Strawberry sees the body's own arguments, with `call` replaced by
`info`. Mutations add their error handling on top (`resolvers.mutations`); a query declared
with `@query` is otherwise a plain field: a `DomainError` its body does not turn into a request
error (`bad_input`) is unexpected, as before.

    @query(IsAuthenticated, description="The signed-in user.")
    async def me(self, call: SignedIn) -> UserType | None:
        user = await call.services.accounts.get_user(call.principal.user_id)
        return UserType.from_model(user) if user else None
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, TypeVar, overload

import strawberry
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from models.accounts import ClientInfo, Principal
from models.services import Services
from resolvers.context import Context
from resolvers.errors import unauthenticated
from resolvers.permissions import SignedInPermission

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Call:
    """What a public operation's body is handed: the request's info, context and services."""

    info: Info[Context, Any]

    @property
    def context(self) -> Context:
        return self.info.context

    @property
    def services(self) -> Services:
        return self.info.context.services

    @property
    def client(self) -> ClientInfo:
        return self.info.context.client


@dataclass(frozen=True, slots=True)
class SignedIn(Call):
    """A signed-in caller's call: the permission has admitted `principal`."""

    principal: Principal


BodyOf = Callable[Concatenate[Any, Call, ...], Awaitable[R]]
SignedBodyOf = Callable[Concatenate[Any, SignedIn, ...], Awaitable[R]]
Body = Callable[..., Awaitable[R]]


async def call_of(info: Info[Context, Any], permission: type[SignedInPermission] | None) -> Call:
    """The body's call: with the principal when the permission admitted one."""
    if permission is None:
        return Call(info)
    principal = await info.context.principal()  # cached: the permission resolved it already
    if principal is None:  # pragma: no cover - the permission refused the call before
        raise unauthenticated()
    return SignedIn(info, principal)


def check_body(body: Body[Any]) -> None:
    params = list(inspect.signature(body).parameters)
    if params[:2] != ["self", "call"]:
        raise TypeError(f"{body.__qualname__}: an operation body is (self, call, ...arguments)")


def as_resolver(body: Body[Any], resolve: Body[R], *, nullable: bool = False) -> Body[R]:
    """`resolve(self, info, **arguments)` presented to Strawberry with the body's arguments
    (annotations resolve in the body's module, so the body's forward references work).

    `nullable`: the field's type is the body's return type or null (root mutation fields).
    """
    signature = inspect.signature(body)
    self_param, _call, *arguments = signature.parameters.values()
    info_param = inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info)
    returns = signature.return_annotation
    if nullable:
        returns = f"{returns} | None" if isinstance(returns, str) else returns | None
    resolve.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, info_param, *arguments], return_annotation=returns
    )
    resolve.__name__ = body.__name__
    resolve.__qualname__ = body.__qualname__
    resolve.__module__ = body.__module__
    resolve.__doc__ = body.__doc__
    return resolve


def permissions(permission: type[SignedInPermission] | None) -> list[Any]:
    return [permission] if permission is not None else []


@overload
def query(
    permission: None, *, description: str | None = None
) -> Callable[[BodyOf[R]], StrawberryField]: ...


@overload
def query(
    permission: type[SignedInPermission], *, description: str | None = None
) -> Callable[[SignedBodyOf[R]], StrawberryField]: ...


def query(
    permission: type[SignedInPermission] | None, *, description: str | None = None
) -> Callable[[Body[R]], StrawberryField]:
    """A root query field around `body(self, call, **arguments)`."""

    def build(body: Body[R]) -> StrawberryField:
        check_body(body)

        async def resolve(self: Any, info: Info[Context, Any], **arguments: Any) -> R:
            return await body(self, await call_of(info, permission), **arguments)

        return strawberry.field(
            as_resolver(body, resolve),
            description=description,
            permission_classes=permissions(permission),
        )

    return build
