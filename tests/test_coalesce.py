"""Calls of concurrent requests made as one (``bourse.coalesce.Coalesced``) and the Redis
pipeline built on it (``bourse.redis_client.Pipelined``), against the real Redis: callers of
the same moment share a batch, in order; later ones go in the next; an error reaches only the
callers it belongs to; a caller that gives up leaves the others their answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bourse import redis_client
from bourse.coalesce import Coalesced
from bourse.settings import Settings
from models.rate_limits import _TAKE, MutationRateLimiter, RateLimits


class Recorder:
    """A batch function that answers each item doubled (or the item itself when it is an
    exception) and keeps every batch it was given."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.batches: list[list[object]] = []
        self.gate = gate

    async def __call__(self, items: list[object]) -> Sequence[object | Exception]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        return [i if isinstance(i, Exception) else (i, i) for i in items]


async def test_callers_of_the_same_moment_share_one_batch_in_order() -> None:
    run = Recorder()
    batch: Coalesced[object, object] = Coalesced(run)
    answers = await asyncio.gather(*(batch(i) for i in range(6)))
    assert answers == [(i, i) for i in range(6)]
    assert run.batches == [[0, 1, 2, 3, 4, 5]]


async def test_callers_during_a_batch_go_in_the_next_one() -> None:
    gate = asyncio.Event()
    run = Recorder(gate)
    batch: Coalesced[object, object] = Coalesced(run)
    first = [asyncio.create_task(batch(i)) for i in range(3)]
    await asyncio.sleep(0.01)  # the first batch is on its way, held at the gate
    later = [asyncio.create_task(batch(i)) for i in range(3, 5)]
    await asyncio.sleep(0.01)
    assert run.batches == [[0, 1, 2]]
    gate.set()
    assert await asyncio.gather(*first, *later) == [(i, i) for i in range(5)]
    assert run.batches == [[0, 1, 2], [3, 4]]


async def test_an_items_error_reaches_its_caller_only_and_a_batchs_error_all_of_it() -> None:
    batch: Coalesced[object, object] = Coalesced(Recorder())
    results = await asyncio.gather(
        batch(1), batch(ValueError("this one")), batch(3), return_exceptions=True
    )
    assert results[0] == (1, 1)
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "this one"
    assert results[2] == (3, 3)

    async def broken(items: list[object]) -> Sequence[object]:
        raise ConnectionError("down")

    failing: Coalesced[object, object] = Coalesced(broken)
    failed = await asyncio.gather(failing(1), failing(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in failed)
    # and the next call gets a new batch
    assert await batch(7) == (7, 7)

    async def short(items: list[object]) -> Sequence[object]:
        return items[:-1]  # a result missing: no caller may get another's

    miscounted: Coalesced[object, object] = Coalesced(short)
    answers = await asyncio.gather(miscounted(1), miscounted(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in answers), answers


async def test_a_caller_that_gives_up_leaves_the_others_their_answers() -> None:
    gate = asyncio.Event()
    batch: Coalesced[object, object] = Coalesced(Recorder(gate))
    calls = [asyncio.create_task(batch(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    calls[1].cancel()
    gate.set()
    assert await calls[0] == (0, 0)
    assert await calls[2] == (2, 2)
    with pytest.raises(asyncio.CancelledError):
        await calls[1]


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url
    client = redis_client.connect(settings.redis_url)
    try:
        yield client
    finally:
        await redis_client.delete_matching(client, f"{settings.redis_prefix}coalesce:*")
        await client.aclose()


class CountedPipelines:
    """The real client, counting the pipelines made from it (what the batching saves)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.made = 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.made += 1
        return self.redis.pipeline(*args, **kwargs)


async def test_concurrent_reads_share_one_pipeline_and_keep_their_replies(
    redis: Redis, settings: Settings
) -> None:
    prefix = f"{settings.redis_prefix}coalesce:{uuid.uuid4().hex[:8]}:"
    await redis.mset({f"{prefix}{i}": f"v{i}" for i in range(20)})
    counted = CountedPipelines(redis)
    pipelined = redis_client.Pipelined(counted)  # type: ignore[arg-type]
    replies = await asyncio.gather(
        *(
            pipelined.execute(("GET", f"{prefix}{i}"), ("GET", f"{prefix}missing{i}"))
            for i in range(20)
        )
    )
    assert [[r.decode() if r else r for r in pair] for pair in replies] == [
        [f"v{i}", None] for i in range(20)
    ]
    assert counted.made == 1


async def test_a_commands_error_is_raised_to_its_caller_only(
    redis: Redis, settings: Settings
) -> None:
    key = f"{settings.redis_prefix}coalesce:{uuid.uuid4().hex[:8]}"
    pipelined = redis_client.Pipelined(redis)
    await pipelined.execute(("RPUSH", key, "a list"))
    answers = await asyncio.gather(
        pipelined.execute(("GET", key)), pipelined.execute(("LLEN", key)), return_exceptions=True
    )
    wrong, right = answers
    assert isinstance(wrong, ResponseError)
    assert "WRONGTYPE" in str(wrong)
    assert right == [1]


async def test_the_rate_limiter_loads_its_script_when_redis_does_not_have_it(
    redis: Redis, settings: Settings
) -> None:
    limiter = MutationRateLimiter(
        redis, f"{settings.redis_prefix}coalesce:", RateLimits(per_user=2, per_ip=0)
    )
    # The same script with a comment no other test sent: a sha Redis has never seen, as
    # after a restart or a SCRIPT FLUSH (not run here: other tests share this Redis).
    limiter._take = redis.register_script(f"{_TAKE}\n-- {uuid.uuid4().hex}")
    assert not (await redis.script_exists(limiter._take.sha))[0]
    user = uuid.uuid4().hex
    assert [await limiter.allow(user, None) for _ in range(3)] == [True, True, False]
    assert (await redis.script_exists(limiter._take.sha))[0]
