"""The error vocabulary of the API.

- `UserError`: expected business failures, returned in every mutation payload's `errors`.
- `ApiError`: request-level failures (UNAUTHENTICATED, FORBIDDEN, …) raised as GraphQL errors
  with `extensions.code`. Anything else is unexpected and masked by `MaskErrors`.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from models.errors import DomainError


@strawberry.type(description="An expected failure: what went wrong, with a stable code.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault, if one is.")
    code: str = strawberry.field(description="Stable machine-readable code, e.g. EMAIL_TAKEN.")
    message: str


def user_errors(exc: DomainError) -> list[UserError]:
    return [UserError(field=p.field, code=p.code.value, message=p.message) for p in exc.problems]


class ApiError(GraphQLError):
    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def bad_input(exc: DomainError) -> ApiError:
    """A query argument the service refused (a bad cursor, …) as a request-level error."""
    problem = exc.problems[0]
    return ApiError(problem.message, "BAD_USER_INPUT", field=problem.field)


def unauthenticated() -> ApiError:
    return ApiError("Sign in first: a valid access token is required.", "UNAUTHENTICATED")


def forbidden(message: str = "Your role may not do this.") -> ApiError:
    return ApiError(message, "FORBIDDEN")


def should_mask(error: GraphQLError) -> bool:
    """Mask only unexpected exceptions; GraphQL errors we raised on purpose pass through."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class MaskUnexpected(MaskErrors):
    """Strawberry's MaskErrors with `should_mask`, and a cheaper test for "a result that
    carries errors": MaskErrors asks ``isinstance(result, <a runtime-checkable Protocol>)``,
    which Python 3.11 answers by walking the protocol's attributes on every call, and it runs
    for every result of every subscription (a quote sent to 1,000 subscribers: 1,000 checks,
    the largest single cost per delivery in the fan-out's profile). The same question,
    answered by the attribute itself."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Internal server error.")

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]
