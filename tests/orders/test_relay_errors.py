"""The settlement process's periodic tasks (outbox relay, DAY expiry, trimming) retry only
expected I/O errors; anything else ends the process so its supervisor restarts it."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import IntegrityError, OperationalError

from bourse.settings import Settings
from workers import settlement
from workers.settlement import OutboxRelay, is_transient, run_every


def test_only_io_errors_are_transient() -> None:
    assert is_transient(RedisConnectionError("gone"))
    assert is_transient(RedisTimeoutError("slow"))
    assert is_transient(ConnectionResetError())
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(KeyError("a bug"))


async def test_an_io_error_is_retried_at_the_next_tick() -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RedisConnectionError("redis restarting")
        if calls == 3:
            stop.set()

    await asyncio.wait_for(run_every(0.01, stop, step), 5)
    assert calls == 3


async def test_anything_else_ends_the_loop() -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a command the code cannot handle")

    with pytest.raises(ValueError, match="cannot handle"):
        await asyncio.wait_for(run_every(0.01, stop, step), 5)
    assert calls == 1


async def test_an_unexpected_relay_error_ends_the_settlement_process(
    settings: Settings, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``workers.settlement.run`` (the process's body) stops every task and raises: the
    process exits non-zero instead of logging the same failure forever."""
    settings = settings.model_copy(update={"redis_prefix": redis_prefix})  # streams of its own

    async def broken(self: OutboxRelay, limit: int = 500) -> int:
        raise RuntimeError("relay bug")

    monkeypatch.setattr(OutboxRelay, "step", broken)
    assert settings.database_url
    assert settings.redis_url
    with pytest.raises(ExceptionGroup) as caught:
        await asyncio.wait_for(
            settlement.run(
                settings, settings.database_url, settings.redis_url, asyncio.Event(), [0]
            ),
            30,
        )
    assert [str(e) for e in caught.value.exceptions] == ["relay bug"]
