"""The one Redis lease (bourse.lease) the shard and the market-data feed hold."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bourse.lease import Lease, LeaseLostError


async def test_one_holder_at_a_time_and_release_only_ones_own(
    rds: Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lease-test"
    first, second = Lease(rds, key, 5_000), Lease(rds, key, 5_000)
    assert first.token != second.token
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await rds.get(key) == first.token
    assert not await second.release()  # never deletes another holder's lease
    assert await rds.get(key) == first.token
    assert await first.release()
    assert not first.held
    assert await rds.exists(key) == 0


async def test_refresh_extends_and_a_taken_over_lease_is_lost(
    rds: Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lease-test"
    first = Lease(rds, key, 300)
    assert await first.try_acquire()
    await asyncio.sleep(0.2)
    await first.refresh()
    assert await rds.pttl(key) > 200
    await rds.delete(key)  # expired, say, while the holder stalled
    second = Lease(rds, key, 5_000)
    assert await second.try_acquire()
    with pytest.raises(LeaseLostError):
        await first.refresh()
    assert not first.held
    assert not await first.reclaim()  # someone else holds it: not taken back
    await second.release()
    assert await first.reclaim()  # expired and free: taken again
    assert await rds.get(key) == first.token


async def test_acquire_waits_for_the_holder_and_stops_when_asked(
    rds: Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}lease-test"
    holder = Lease(rds, key, 5_000)
    assert await holder.try_acquire()
    waiting = Lease(rds, key, 5_000)
    seen: list[object] = []
    stop = asyncio.Event()
    task = asyncio.create_task(waiting.acquire(stop.is_set, poll=0.01, on_wait=seen.append))
    await asyncio.sleep(0.1)
    assert not task.done()
    assert seen == [holder.token]  # told once who holds it
    await holder.release()
    assert await asyncio.wait_for(task, 2)
    assert waiting.held
    stop.set()
    late = Lease(rds, key, 5_000)
    assert not await late.acquire(stop.is_set)  # stopped: gives up without waiting
    await waiting.release()


async def test_acquire_retries_only_the_errors_it_is_told_to(rds: Redis, redis_prefix: str) -> None:
    key = f"{redis_prefix}lease-test"
    lease = Lease(rds, key, 5_000)
    failures = [RedisConnectionError("down"), RedisConnectionError("still down")]
    real = lease.try_acquire

    async def flaky() -> bool:
        if failures:
            raise failures.pop(0)
        return await real()

    lease.try_acquire = flaky  # type: ignore[method-assign]
    errors: list[Exception] = []
    assert await lease.acquire(
        lambda: False, poll=0.01, on_error=errors.append, retry_on=(RedisConnectionError,)
    )
    assert len(errors) == 2
    await lease.release()
    failures.append(RedisConnectionError("down"))
    with pytest.raises(RedisConnectionError):
        await lease.acquire(lambda: False, poll=0.01)
