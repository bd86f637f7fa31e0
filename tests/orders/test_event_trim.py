"""The events streams are trimmed only behind every consumer and the shard's snapshot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bourse.keys import events_key, snapshot_key
from bourse.settings import Settings
from models.services import Services, open_services
from workers.settlement import EventTrimmer, SettlementConsumer


@pytest.fixture
async def services(settings: Settings, redis_prefix: str) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    scoped = settings.model_copy(update={"redis_prefix": redis_prefix})
    async with open_services(scoped, settings.database_url, settings.redis_url) as opened:
        yield opened
        keys = [k async for k in opened.redis.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await opened.redis.delete(*keys)


async def test_trim_keeps_what_a_consumer_or_the_snapshot_still_needs(services: Services) -> None:
    redis, prefix = services.redis, services.settings.redis_prefix
    stream = events_key(prefix, 0)
    ids = [(await redis.xadd(stream, {"event": f"{i}"})).decode() for i in range(10)]
    trimmer = EventTrimmer(services, [0], approximate=False)  # exact, to see every entry
    await redis.xgroup_create(stream, "settlement", id="0")
    await redis.xgroup_create(stream, "marketdata", id="0")
    await redis.xreadgroup("settlement", "s", {stream: ">"}, count=6)
    await redis.xack(stream, "settlement", *ids[:4])  # entries 4 and 5 are still pending
    await redis.xreadgroup("marketdata", "m", {stream: ">"}, count=8)
    await redis.xack(stream, "marketdata", *ids[:8])

    assert await trimmer.step() == 0  # no snapshot yet: the shard may need everything
    await redis.set(snapshot_key(prefix, 0), json.dumps({"events_id": ids[8], "input_id": "1-0"}))
    assert await trimmer.safe_point(0) == ids[4]  # the oldest pending entry
    assert await trimmer.step() == 4
    left = [e[0].decode() for e in await redis.xrange(stream)]
    assert left == ids[4:]

    await redis.xack(stream, "settlement", ids[4], ids[5])
    await redis.xreadgroup("settlement", "s", {stream: ">"})
    await redis.xack(stream, "settlement", *ids[6:])
    # settlement is done; the feed has read up to entry 7; the snapshot needs after entry 8
    assert await trimmer.safe_point(0) == ids[7]
    await trimmer.step()
    assert [e[0].decode() for e in await redis.xrange(stream)] == ids[7:]


async def test_pending_entries_acknowledged_between_the_two_reads_are_no_error(
    services: Services,
) -> None:
    """The settlement acknowledges its pending entries between the trimmer's XINFO (which saw
    them) and its XPENDING (which then finds none): the group's last-delivered id bounds the
    trim, and nothing fails (the settlement process used to die on `None` here)."""
    redis, prefix = services.redis, services.settings.redis_prefix
    stream = events_key(prefix, 0)
    ids = [(await redis.xadd(stream, {"event": f"{i}"})).decode() for i in range(6)]
    await redis.xgroup_create(stream, "settlement", id="0")
    await redis.xreadgroup("settlement", "s", {stream: ">"}, count=4)
    await redis.set(snapshot_key(prefix, 0), json.dumps({"events_id": ids[5], "input_id": "1-0"}))
    groups = redis.xinfo_groups

    async def groups_then_ack(name: str) -> object:
        seen = await groups(name)  # pending: 4
        await redis.xack(stream, "settlement", *ids[:4])  # the consumer catches up meanwhile
        return seen

    redis.xinfo_groups = groups_then_ack  # type: ignore[method-assign, assignment]
    try:
        trimmer = EventTrimmer(services, [0], approximate=False)
        assert await trimmer.safe_point(0) == ids[3]
        assert await trimmer.step() == 3
    finally:
        redis.xinfo_groups = groups  # type: ignore[method-assign]
    assert [e[0].decode() for e in await redis.xrange(stream)] == ids[3:]


async def test_pending_entries_gone_from_the_stream_do_not_hold_the_trim(
    services: Services,
) -> None:
    """After an AOF loss the settlement group's pending list can name entries the stream no
    longer has (and a trimmed entry is gone too): XREADGROUP gives them back without fields,
    forever, and the oldest of them bounded every trim, so the stream grew without end. The
    settlement acknowledges them (nothing to apply: the fence and the rebuild dropped them),
    reads the real pending entries behind them, and the trim moves on."""
    redis, prefix = services.redis, services.settings.redis_prefix
    stream = events_key(prefix, 0)
    await redis.xgroup_create(stream, "settlement", id="0", mkstream=True)
    phantoms = [(await redis.xadd(stream, {"event": "{}"})).decode() for _ in range(3)]
    await redis.xreadgroup("settlement", "settlement", {stream: ">"})  # delivered, pending
    await redis.xdel(stream, *phantoms)  # gone from the stream, still pending
    later = [(await redis.xadd(stream, {"event": f"{i}"})).decode() for i in range(5)]
    await redis.set(
        snapshot_key(prefix, 0), json.dumps({"events_id": later[-1], "input_id": "1-0"})
    )
    await redis.xreadgroup("settlement", "other", {stream: ">"})
    await redis.xack(stream, "settlement", *later)
    trimmer = EventTrimmer(services, [0], approximate=False)
    assert await trimmer.safe_point(0) == phantoms[0]  # what held the trim

    consumer = SettlementConsumer(services, [0], batch_size=2)  # two reads of phantoms
    assert await consumer._read(None) == []
    assert (await redis.xpending(stream, "settlement"))["pending"] == 0
    assert await trimmer.safe_point(0) == later[-1]
    assert await trimmer.step() == 4
