"""The schema's executor shortcut for plain lists (resolvers/execution.py) answers exactly what
graphql-core answers: same data, same errors at the same paths, whatever the selection, and a
plain field behind a permission is still checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission

from resolvers.execution import BourseExecutor


@strawberry.enum
class Side(Enum):
    BUY = "BUY"
    SELL = "SELL"


class Denied(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Row:
    amount: Decimal
    at: datetime
    note: str | None
    side: Side
    required: str
    secret: str = strawberry.field(default="s3cret", permission_classes=[Denied])

    @strawberry.field
    def doubled(self) -> Decimal:
        return self.amount * 2


def rows(n: int, broken: int | None = None) -> list[Row]:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [
        Row(
            amount=Decimal(i) / 100,
            at=at,
            note=None if i % 3 else f"n{i}",
            side=Side.BUY if i % 2 else Side.SELL,
            required=None if i == broken else "ok",  # type: ignore[arg-type]
        )
        for i in range(n)
    ]


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row]:
        return rows(50)

    @strawberry.field
    def maybe_rows(self) -> list[Row | None] | None:
        return [*rows(3), None]

    @strawberry.field
    def broken(self) -> list[Row]:
        return rows(5, broken=2)

    @strawberry.field
    def broken_nullable_items(self) -> list[Row | None]:
        return rows(5, broken=3)  # type: ignore[return-value]


FAST = strawberry.Schema(Query, execution_context_class=BourseExecutor)
CORE = strawberry.Schema(Query)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ rows { amount at note side required } }", None),
        ("{ rows { a: amount b: amount __typename side } }", None),
        ("{ rows { amount doubled } }", None),  # a resolver: graphql-core's path
        ("{ rows { ...F } } fragment F on Row { note at }", None),
        ("query($x: Boolean!) { rows { amount note @include(if: $x) } }", {"x": False}),
        ("query($x: Boolean!) { rows { amount note @skip(if: $x) } }", {"x": False}),
        ("{ maybeRows { amount side } }", None),
        ("{ broken { amount required } }", None),  # null in a non-null field: an error
        ("{ brokenNullableItems { amount required } }", None),
        ("{ rows { amount secret } }", None),  # a permission on a plain field: still refused
    ],
)
def test_plain_lists_answer_what_graphql_core_answers(
    query: str, variables: dict[str, Any] | None
) -> None:
    fast = FAST.execute_sync(query, variable_values=variables)
    core = CORE.execute_sync(query, variable_values=variables)
    assert json.dumps(fast.data) == json.dumps(core.data)  # same keys in the same order
    assert [e.formatted for e in fast.errors or ()] == [e.formatted for e in core.errors or ()]
    assert fast.data is not None or fast.errors
