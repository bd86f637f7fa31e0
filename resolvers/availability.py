"""Queries and subscriptions while PostgreSQL or Redis is down: the GraphQL error of a field
that could not be answered carries ``extensions.code = SERVICE_UNAVAILABLE`` (instead of a masked
"Internal server error."), and the fields that could be answered keep their data.

Mutations answer the same code in their payload's ``errors`` (``resolvers.mutations``).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from models.availability import UNAVAILABLE_MESSAGE, is_unavailable
from models.errors import ErrorCode


def unavailable_error(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        UNAVAILABLE_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": ErrorCode.SERVICE_UNAVAILABLE.value},
    )


class DependencyErrors(SchemaExtension):
    """Listed after ``MaskErrors``, so it sees the errors before they are masked."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [
            unavailable_error(e) if is_unavailable(e.original_error) else e for e in result.errors
        ]
