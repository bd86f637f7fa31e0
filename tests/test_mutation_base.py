"""The one mutation pattern (`resolvers.mutations`): what it does for a mutation, and that every
mutation of the schema is built with it and documents the codes it declares; and `@query`
(`resolvers.calls`), which hands root queries the same typed call.

The declared codes match what the services return: outside production the wrapper fails any call
that returns an undeclared code, so every test (and the schema fuzzing) that reaches a
`DomainError` checks the declaration it went through. The first tests prove that guard works.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from redis.exceptions import ConnectionError as RedisConnectionError
from strawberry.types.base import StrawberryObjectDefinition
from structlog.testing import capture_logs

from bourse.settings import Environment, Settings
from models.accounts import ClientInfo, Principal
from models.errors import DomainError, ErrorCode
from models.users import Role
from resolvers.calls import Call, SignedIn, query
from resolvers.errors import UserError
from resolvers.mutations import SPECS, describe, mutation
from resolvers.permissions import IsAdmin, IsAuthenticated
from resolvers.schema import schema as app_schema

ROOT = Path(__file__).resolve().parent.parent
ALICE = Principal(user_id=uuid.uuid4(), role=Role.CUSTOMER, session_id=uuid.uuid4())


@strawberry.type
class EchoPayload:
    text: str | None = None
    user_id: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ToyMutation:
    @mutation(None, errors=[ErrorCode.INVALID_INPUT], payload=EchoPayload, description="Echo.")
    async def echo(self, call: Call, text: str) -> EchoPayload:
        if text == "bad":
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Bad text.", "text")
        if text == "undeclared":
            raise DomainError.one(ErrorCode.NOT_FOUND, "Not declared.", "text")
        if text == "redis-down":  # what redis-py raises when Redis refuses the connection
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")
        if text == "bug":
            raise ValueError("a bug, not an outage")
        return EchoPayload(text=text)

    @mutation(IsAuthenticated, errors=(), payload=EchoPayload)
    async def whoami(self, call: SignedIn) -> EchoPayload:
        return EchoPayload(user_id=str(call.principal.user_id))

    @mutation(IsAdmin, errors=[ErrorCode.NOT_ALLOWED], payload=EchoPayload)
    async def admin_only(self, call: SignedIn) -> EchoPayload:
        return EchoPayload(text="admin")


@strawberry.type
class ToyQuery:
    ping: str = "pong"


toy = strawberry.Schema(query=ToyQuery, mutation=ToyMutation)


class Unlimited:
    async def allow(self, user_id: str | None, ip: str | None) -> bool:
        return True


class StubContext:
    """Just what the wrapper and the permissions read: the caller and the settings."""

    def __init__(self, principal: Principal | None, env: Environment = "test") -> None:
        self._principal = principal
        # The rate limiter is Redis's; these toy mutations are never limited (its own test:
        # tests/security/test_mutation_rate_limits.py).
        self.services = SimpleNamespace(settings=Settings(env=env), rate_limits=Unlimited())
        self.client = ClientInfo(ip=None, user_agent=None)

    async def principal(self) -> Principal | None:
        return self._principal


async def run(query: str, principal: Principal | None = None, env: Environment = "test") -> Any:
    return await toy.execute(query, context_value=StubContext(principal, env))


async def test_success_returns_the_body_payload() -> None:
    result = await run('mutation { echo(text: "hi") { text errors { code } } }')
    assert result.errors is None
    assert result.data == {"echo": {"text": "hi", "errors": []}}


async def test_domain_error_becomes_the_payload_errors_with_null_results() -> None:
    result = await run('mutation { echo(text: "bad") { text errors { field code message } } }')
    assert result.errors is None
    assert result.data == {
        "echo": {
            "text": None,
            "errors": [{"field": "text", "code": "INVALID_INPUT", "message": "Bad text."}],
        }
    }


async def test_an_undeclared_code_fails_loudly_outside_production() -> None:
    result = await run('mutation { echo(text: "undeclared") { text errors { code } } }')
    assert result.errors, "an undeclared code must not pass silently in tests"
    assert "NOT_FOUND" in result.errors[0].message
    assert "echo" in result.errors[0].message


async def test_an_undeclared_code_passes_through_in_production_with_a_warning() -> None:
    with capture_logs() as logs:
        result = await run(
            'mutation { echo(text: "undeclared") { errors { code } } }', env="production"
        )
    assert result.errors is None
    assert result.data == {"echo": {"errors": [{"code": "NOT_FOUND"}]}}
    assert any(e.get("codes") == ["NOT_FOUND"] and e["mutation"] == "echo" for e in logs)


async def test_a_dependency_down_is_service_unavailable_and_a_bug_is_not() -> None:
    result = await run('mutation { echo(text: "redis-down") { text errors { code } } }')
    assert result.errors is None
    assert result.data == {"echo": {"text": None, "errors": [{"code": "SERVICE_UNAVAILABLE"}]}}
    result = await run('mutation { echo(text: "bug") { text errors { code } } }')
    assert result.errors, "a bug must stay an internal error, not pass as an outage"
    assert result.data == {"echo": None}


async def test_the_declared_permission_runs_before_the_body() -> None:
    result = await run("mutation { whoami { userId } }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAUTHENTICATED"}

    result = await run("mutation { adminOnly { text } }", principal=ALICE)
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "FORBIDDEN"}


async def test_the_body_is_handed_the_principal() -> None:
    result = await run("mutation { whoami { userId errors { code } } }", principal=ALICE)
    assert result.errors is None
    assert result.data == {"whoami": {"userId": str(ALICE.user_id), "errors": []}}


def test_the_description_lists_the_declared_codes() -> None:
    fields = toy._schema.mutation_type.fields  # type: ignore[union-attr]
    assert (
        fields["echo"].description
        == "Echo. Errors: INVALID_INPUT, RATE_LIMITED, SERVICE_UNAVAILABLE."
    )
    # Every mutation may be rate limited or refused while a dependency is down: the codes
    # each lists without declaring them.
    assert fields["whoami"].description == "Errors: RATE_LIMITED, SERVICE_UNAVAILABLE."
    assert (
        fields["adminOnly"].description == "Errors: NOT_ALLOWED, RATE_LIMITED, SERVICE_UNAVAILABLE."
    )
    assert (
        describe("Trailing space. ", [ErrorCode.NOT_FOUND]) == "Trailing space. Errors: NOT_FOUND."
    )


def test_a_code_declared_twice_or_a_body_without_call_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        mutation(None, errors=[ErrorCode.NOT_FOUND, ErrorCode.NOT_FOUND], payload=EchoPayload)

    async def no_call(self: Any, info: Any) -> EchoPayload:
        return EchoPayload()

    with pytest.raises(TypeError, match="self, call"):
        mutation(None, errors=(), payload=EchoPayload)(no_call)


# ---- the application schema ----


def _mutation_fields() -> dict[str, Any]:
    definition = app_schema.get_type_by_name("Mutation")
    assert isinstance(definition, StrawberryObjectDefinition)
    return {f.python_name: f for f in definition.fields}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_every_mutation_is_built_with_the_one_pattern() -> None:
    for name, field in _mutation_fields().items():
        resolver = field.base_resolver
        assert resolver is not None, name
        spec = SPECS.get(resolver.wrapped_func)
        assert spec is not None, f"{name}: use resolvers.mutations.mutation"
        declared = list(field.permission_classes)
        assert declared == ([spec.permission] if spec.permission else []), name


def test_every_mutation_documents_exactly_its_declared_codes() -> None:
    sdl = app_schema._schema.mutation_type
    assert sdl is not None
    for name, field in _mutation_fields().items():
        spec = SPECS[field.base_resolver.wrapped_func]
        description = sdl.fields[_camel(name)].description or ""
        listed = re.findall(r"Errors: ([A-Z_, ]+)\.$", description)
        if not spec.errors:
            assert not listed, name
            continue
        assert listed, f"{name}: {description!r}"
        assert listed[0].split(", ") == [c.value for c in spec.errors], name


# The codes API.md names per mutation (sections 3-7): each must be declared (and so documented).
CONTRACT_CODES = {
    "register": {"USERNAME_TAKEN", "EMAIL_TAKEN", "INVALID_EMAIL", "WEAK_PASSWORD"},
    "login": {"INVALID_CREDENTIALS", "OTP_REQUIRED", "INVALID_OTP", "ACCOUNT_LOCKED"},
    "resetPassword": {"INVALID_TOKEN"},
    "withdraw": {"INVALID_AMOUNT", "UNSUPPORTED_CURRENCY", "INSUFFICIENT_FUNDS"},
    "deposit": {"INVALID_AMOUNT", "UNSUPPORTED_CURRENCY"},  # INSUFFICIENT_FUNDS: withdrawals
    "placeOrder": {
        "UNKNOWN_ASSET", "ASSET_NOT_TRADABLE", "INVALID_QUANTITY", "INVALID_PRICE",
        "INSUFFICIENT_BUYING_POWER", "INSUFFICIENT_SHARES", "DUPLICATE_CLIENT_ORDER_ID",
    },
    "cancelOrder": {"NOT_FOUND", "NOT_CANCELLABLE"},
    # section 9
    "requestStatement": {"INVALID_DATE_RANGE"},
    "requestTaxDocument": {"INVALID_DATE_RANGE"},
    "recordCashDividend": {"UNKNOWN_ASSET", "INVALID_AMOUNT", "INVALID_DATE_RANGE"},
    "recordStockSplit": {"UNKNOWN_ASSET", "INVALID_DATE_RANGE", "OPEN_ORDERS"},
}  # fmt: skip


def test_the_contracts_codes_are_declared() -> None:
    by_graphql_name = {_camel(n): f for n, f in _mutation_fields().items()}
    for name, codes in CONTRACT_CODES.items():
        spec = SPECS[by_graphql_name[name].base_resolver.wrapped_func]
        assert codes <= {c.value for c in spec.errors}, name


# ---- root queries that need the caller (resolvers.calls.query) ----


@strawberry.type
class ToyCallerQuery:
    @query(IsAuthenticated, description="Who am I.")
    async def me(self, call: SignedIn, shout: bool = False) -> str:
        text = str(call.principal.user_id)
        return text.upper() if shout else text


toy_queries = strawberry.Schema(query=ToyCallerQuery)


async def test_a_query_gets_the_declared_permission_and_the_principal() -> None:
    refused = await toy_queries.execute("{ me }", context_value=StubContext(None))
    assert refused.errors is not None
    assert refused.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    result = await toy_queries.execute("{ me(shout: true) }", context_value=StubContext(ALICE))
    assert result.errors is None
    assert result.data == {"me": str(ALICE.user_id).upper()}
    query_type = toy_queries._schema.query_type
    assert query_type is not None
    assert query_type.fields["me"].description == "Who am I."
