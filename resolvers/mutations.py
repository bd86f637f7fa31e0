"""One way to write a mutation: `@mutation(permission, errors=..., payload=...)`.

The decorator owns what every mutation used to repeat by hand:

- the permission is declared (a class of `resolvers.permissions`, run by Strawberry before the
  body, exactly as `permission_classes=[...]`), never checked inside the body;
- the body is handed the call (`resolvers.calls`): `SignedIn` (with the caller's `Principal`,
  typed, no `require_principal()`) under a `SignedInPermission`, `Call` for a public mutation;
- a `DomainError` from the body becomes the payload with its result fields null and `errors`
  filled (`payload(errors=...)`, or the mutation's own `failed` builder);
- the field is nullable: a mutation refused by its permission is null with its GraphQL error,
  and the document's other mutations keep their results;
- every mutation is rate limited per user and per client address (`models.rate_limits`):
  past the limit the payload carries `RATE_LIMITED` and the body does not run;
- while PostgreSQL or Redis cannot be reached (`models.availability.is_unavailable`), the
  payload carries `SERVICE_UNAVAILABLE` (every call to them is bounded in time, and the whole
  mutation by `Settings.mutation_timeout_seconds`), never a 500 nor a hang;
- the error codes the mutation can return are declared once, here, and the field's schema
  description ends with them ("… Errors: EMAIL_TAKEN, INVALID_EMAIL."). `UserError.code` stays
  a `String!` on the wire (API.md section 1).

A code the mutation did not declare is a bug in the declaration: outside production (tests,
development) the call fails loudly (`UndeclaredErrorCode`, an internal error that the test sees);
in production the payload goes out unchanged and a warning is logged.

    @mutation(IsAuthenticated, errors=[ErrorCode.INVALID_AMOUNT], payload=FundsPayload)
    async def deposit(self, call: SignedIn, input: DepositInput) -> FundsPayload:
        txn = await call.services.funds.deposit(call.principal.user_id, ...)
        return FundsPayload(transaction=TransactionNode.from_model(txn))
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload

import strawberry
import structlog
from strawberry.types import Info
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from bourse import metrics
from bourse.settings import Settings
from models.audit import Entry
from models.availability import SERVICE_UNAVAILABLE, is_unavailable
from models.errors import DomainError, ErrorCode
from resolvers.calls import (
    Body,
    BodyOf,
    Call,
    SignedBodyOf,
    SignedIn,
    as_resolver,
    call_of,
    check_body,
    permissions,
)
from resolvers.context import Context
from resolvers.errors import UserError, user_errors
from resolvers.permissions import SignedInPermission

log = structlog.get_logger("resolvers.mutations")

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Payload(Protocol[R_co]):
    """A payload type: built from its `errors` alone, every result field left null."""

    def __call__(self, *, errors: list[UserError]) -> R_co: ...


RATE_LIMITED = DomainError.one(
    ErrorCode.RATE_LIMITED, "Too many requests in a minute: wait a little and try again."
)
"""Every mutation's answer past the per-user or per-address limit (`models.rate_limits`)."""


async def record(call: Call, action: str, result: object, outcome: str) -> None:
    """One audit event for a mutation that ran (its act already committed): the actor, and
    the subject (the payload's `user` when it names one, as sign-in's does, else the actor)."""
    actor = call.principal.user_id if isinstance(call, SignedIn) else None
    user = getattr(result, "user", None)
    named = getattr(user, "id", None)
    subject = uuid.UUID(str(named)) if named else actor
    request = call.context.request
    state = getattr(request, "state", None)
    try:
        await call.services.audit.record(
            Entry(
                action=action,
                outcome=outcome[:200],
                actor_id=actor,
                subject_id=subject,
                request_id=getattr(state, "request_id", None),
                ip=call.client.ip,
            )
        )
    except Exception:  # the act stands; a lost audit event is logged loudly, never a 500
        log.exception("audit event not recorded", action=action, outcome=outcome)


def _payload_outcome(result: object) -> str:
    """ok, or the first code of a payload a body returned with its errors filled."""
    errors = getattr(result, "errors", None)
    return str(getattr(errors[0], "code", "ERROR")) if errors else "ok"


class UndeclaredErrorCode(AssertionError):
    """A mutation returned a code its `errors=[...]` does not list (tests and development)."""


@dataclass(frozen=True, slots=True)
class MutationSpec:
    """What a mutation declared: read by the schema description and by tests."""

    name: str
    permission: type[SignedInPermission] | None
    errors: tuple[ErrorCode, ...]

    def check(self, exc: DomainError, settings: Settings) -> None:
        undeclared = sorted({p.code.value for p in exc.problems} - set(self.errors))
        if not undeclared:
            return
        if settings.env != "production":
            raise UndeclaredErrorCode(
                f"mutation {self.name} returned {', '.join(undeclared)}, not in its errors=[...]"
            ) from exc
        log.warning("undeclared error codes", mutation=self.name, codes=undeclared)


SPECS: dict[Callable[..., Any], MutationSpec] = {}
"""Every mutation resolver built here, with its declaration (tests check the schema uses them)."""


def describe(description: str | None, errors: Sequence[ErrorCode]) -> str | None:
    """The field's description followed by the codes it may return."""
    if not errors:
        return description
    codes = f"Errors: {', '.join(e.value for e in errors)}."
    return f"{description.rstrip()} {codes}" if description else codes


@overload
def mutation(
    permission: None,
    *,
    errors: Sequence[ErrorCode],
    payload: Payload[R],
    description: str | None = None,
    failed: Callable[[DomainError], R] | None = None,
    audit: str | None = None,
) -> Callable[[BodyOf[R]], StrawberryField]: ...


@overload
def mutation(
    permission: type[SignedInPermission],
    *,
    errors: Sequence[ErrorCode],
    payload: Payload[R],
    description: str | None = None,
    failed: Callable[[DomainError], R] | None = None,
    audit: str | None = None,
) -> Callable[[SignedBodyOf[R]], StrawberryField]: ...


def mutation(
    permission: type[SignedInPermission] | None,
    *,
    errors: Sequence[ErrorCode],
    payload: Payload[R],
    description: str | None = None,
    failed: Callable[[DomainError], R] | None = None,
    audit: str | None = None,
) -> Callable[[Body[R]], StrawberryField]:
    """A Strawberry mutation field around `body(self, call, **arguments)`.

    `permission`: the class that admits the caller (`None`: anyone). `errors`: every code the
    body can return in the payload. `payload`: the payload type (built as `payload(errors=...)`
    on a `DomainError`), unless `failed` builds the failure payload itself. `audit`: the action
    name this mutation is recorded under in the audit log (`models.audit`), success or not.
    """
    declared = tuple(errors)
    if len(set(declared)) != len(declared):
        raise ValueError(f"error codes declared twice: {declared}")
    if ErrorCode.RATE_LIMITED not in declared:  # every mutation is rate limited
        declared = (*declared, ErrorCode.RATE_LIMITED)
    if ErrorCode.SERVICE_UNAVAILABLE not in declared:  # and refused while a dependency is down
        declared = (*declared, ErrorCode.SERVICE_UNAVAILABLE)

    def to_payload(exc: DomainError) -> R:
        return payload(errors=user_errors(exc))

    on_error = failed or to_payload

    def build(body: Body[R]) -> StrawberryField:
        check_body(body)
        spec = MutationSpec(body.__name__, permission, declared)
        field = to_camel_case(body.__name__)  # the schema's name: the metrics' label

        async def resolve(self: Any, info: Info[Context, Any], **arguments: Any) -> R:
            call = await call_of(info, permission)
            user_id = str(call.principal.user_id) if isinstance(call, SignedIn) else None
            bound = call.services.settings.mutation_timeout_seconds
            try:
                async with asyncio.timeout(bound):
                    if not await call.services.rate_limits.allow(user_id, call.client.ip):
                        metrics.mutations.labels(field, ErrorCode.RATE_LIMITED.value).inc()
                        return on_error(RATE_LIMITED)
                    result = await body(self, call, **arguments)
            except DomainError as exc:
                spec.check(exc, info.context.services.settings)
                metrics.mutations.labels(field, exc.problems[0].code.value).inc()
                if audit:
                    await record(call, audit, None, ",".join(p.code.value for p in exc.problems))
                return on_error(exc)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # PostgreSQL or Redis is down (each call is bounded, models.availability):
                # a clear answer, never a 500 nor a hang.
                log.warning("dependency unavailable", mutation=spec.name, error=repr(exc))
                metrics.mutations.labels(field, "SERVICE_UNAVAILABLE").inc()
                return on_error(SERVICE_UNAVAILABLE)
            metrics.mutations.labels(field, _payload_outcome(result)).inc()
            if audit:
                await record(call, audit, result, "ok")
            return result

        # Nullable, as Saleor's and GitHub's root mutation fields are: a document of several
        # mutations where one is refused (FORBIDDEN, UNAUTHENTICATED) nulls that field alone,
        # not the whole `data` beside mutations that did run (a booked deposit stays visible).
        resolver = as_resolver(body, resolve, nullable=True)
        SPECS[resolver] = spec
        return strawberry.mutation(
            resolver,
            description=describe(description, declared),
            permission_classes=permissions(permission),
        )

    return build
