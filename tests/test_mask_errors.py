"""Unexpected exceptions never reach a client: in a query's result and in every result of a
subscription (`resolvers.errors.MaskUnexpected`); errors raised on purpose pass through."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers.errors import ApiError, MaskUnexpected


@strawberry.type
class Tick:
    n: int

    @strawberry.field
    def broken(self) -> int | None:
        if self.n == 2:
            raise RuntimeError("connection to 10.0.0.7 refused (secret internals)")
        if self.n == 3:
            raise ApiError("Tick three is refused.", "FORBIDDEN")
        return self.n


@strawberry.type
class Query:
    @strawberry.field
    def internal(self) -> int | None:
        raise RuntimeError("password=hunter2 in the DSN")

    @strawberry.field
    def on_purpose(self) -> int | None:
        raise ApiError("No such asset.", "UNKNOWN_ASSET")


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Tick, None]:
        for n in (1, 2, 3):
            yield Tick(n=n)


schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=[MaskUnexpected])


async def test_an_unexpected_exception_in_a_query_is_masked() -> None:
    result = await schema.execute("{ internal }")
    assert result.errors is not None
    assert [e.message for e in result.errors] == ["Internal server error."]
    assert "hunter2" not in str(result.errors[0].formatted)


async def test_an_error_raised_on_purpose_passes_through() -> None:
    result = await schema.execute("{ onPurpose }")
    assert result.errors is not None
    assert result.errors[0].message == "No such asset."
    assert (result.errors[0].extensions or {}).get("code") == "UNKNOWN_ASSET"


async def test_every_subscription_result_is_masked_alike() -> None:
    stream = await schema.subscribe("subscription { ticks { n broken } }")
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    results = [r async for r in stream]
    assert [r.data for r in results] == [
        {"ticks": {"n": 1, "broken": 1}},
        {"ticks": {"n": 2, "broken": None}},
        {"ticks": {"n": 3, "broken": None}},
    ]
    assert results[0].errors is None
    assert [e.message for e in results[1].errors or []] == ["Internal server error."]
    assert "10.0.0.7" not in str([e.formatted for e in results[1].errors or []])
    assert [e.message for e in results[2].errors or []] == ["Tick three is refused."]
