"""Settlement's pace (`Settings.settlement_pace_ms`): a consumer that keeps up under load (a
batch of two or more, not full) starts its next batch no sooner than the pace after the last
one was read; after a single entry (a quiet market) or a full batch (lag) it goes straight on,
and a stop ends the pause at once. The batches themselves are scripted here (what
the consumer reads is not the point); the real ones run paced in every stack test, the
SIGKILL-mid-batch test among them (test_settlement_batches.py)."""

from __future__ import annotations

import asyncio
import itertools

from bourse.settings import Settings
from models.services import open_services
from workers.settlement import SettlementConsumer

PACE = 0.25


async def _run_scripted(settings: Settings, reads: list[int], *, pace: float = PACE) -> list[float]:
    """Run the consumer over `reads` (entries per batch); when each step began."""
    assert settings.database_url
    assert settings.redis_url
    began: list[float] = []
    stop = asyncio.Event()
    async with open_services(settings, settings.database_url, settings.redis_url, pool_size=1) as s:
        consumer = SettlementConsumer(s, [0], batch_size=10)
        consumer.pace = pace
        loop = asyncio.get_running_loop()
        script = iter(reads)

        async def step(block_ms: int | None = None) -> int:
            began.append(loop.time())
            n = next(script, None)
            if n is None:
                stop.set()
                return 0
            if n:
                consumer._read_at = loop.time()  # what the real step records once it has read
            return n

        consumer.step = step  # type: ignore[method-assign]
        await asyncio.wait_for(consumer.run(stop), 10)
    return began


async def test_a_consumer_that_keeps_up_waits_and_one_that_lags_does_not(
    settings: Settings,
) -> None:
    # a small batch, two full ones (lag), a small one, an idle read (nothing: the real step
    # has already blocked for it), a single entry, a small one
    began = await _run_scripted(settings, [3, 10, 10, 2, 0, 1, 4])
    gaps = [b - a for a, b in itertools.pairwise(began)]
    assert gaps[0] >= PACE * 0.95  # after 3 of 10: paced
    assert gaps[1] < PACE / 2  # after a full batch: straight on
    assert gaps[2] < PACE / 2
    assert gaps[3] >= PACE * 0.95  # after 2 of 10: paced
    assert gaps[4] < PACE / 2  # after an idle read: no pause on top of its block
    assert gaps[5] < PACE / 2  # after a single entry: a quiet market, no pause
    assert gaps[6] >= PACE * 0.95


async def test_no_pace_runs_batches_back_to_back(settings: Settings) -> None:
    began = await _run_scripted(settings, [2, 3, 4], pace=0)
    assert began[-1] - began[0] < PACE / 2


async def test_a_stop_ends_the_pause_at_once(settings: Settings) -> None:
    assert settings.database_url
    assert settings.redis_url
    stop = asyncio.Event()
    async with open_services(settings, settings.database_url, settings.redis_url, pool_size=1) as s:
        consumer = SettlementConsumer(s, [0], batch_size=10)
        consumer.pace = 30.0
        loop = asyncio.get_running_loop()

        async def step(block_ms: int | None = None) -> int:
            consumer._read_at = loop.time()
            return 2

        consumer.step = step  # type: ignore[method-assign]
        started = loop.time()
        running = asyncio.create_task(consumer.run(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(running, 2)
        assert loop.time() - started < 2


def test_the_default_pace_is_bounded() -> None:
    # What a fill's notice may wait under load, at most, on top of its batch: a quarter second.
    assert 0 < Settings().settlement_pace_ms <= 250
