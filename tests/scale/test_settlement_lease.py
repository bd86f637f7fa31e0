"""One settlement consumer per shard, by lease, however many processes run for it: a second
settlement process for the same shard stands by (it applies nothing while the first holds the
lease), takes over once the first is SIGKILLed, and orders settle again; the ledger is clean."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bourse.keys import settlement_lease_key
from bourse.settings import Settings
from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader, wait_book, wait_order
from tests.support.polling import eventually
from tests.support.stack import Stack

LEASE_S = 2.0


@pytest.fixture
async def two_settlements(settings: Settings) -> AsyncIterator[tuple[Stack, Services]]:
    stack = Stack(settings, shards=1)
    stack.env["BOURSE_SETTLEMENT_LEASE_SECONDS"] = str(LEASE_S)
    stack.commands["settlement-0-standby"] = stack.commands["settlement-0"]
    try:
        await stack.start_all()
        async with stack.services(pool_size=4) as services:
            yield stack, services
    finally:
        await stack.stop_all()


async def _holder_pid(redis: Redis, key: str) -> int | None:
    token = await redis.get(key)
    return int(token.decode().split(":")[1]) if token else None


async def test_a_standby_settlement_takes_over_the_shard_when_the_holder_dies(
    two_settlements: tuple[Stack, Services],
) -> None:
    stack, services = two_settlements
    key = settlement_lease_key(stack.prefix, 0)
    pids = {name: stack.procs[name].pid for name in ("settlement-0", "settlement-0-standby")}
    holder = await eventually(
        lambda: _holder_pid(services.redis, key), timeout=30, what="a settlement lease holder"
    )
    assert holder in pids.values()
    holder_name = next(n for n, pid in pids.items() if pid == holder)
    standby_name = next(n for n in pids if n != holder_name)

    sym = symbol("SL")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    async with stack.client() as api:
        token, _ = await trader(api, "10000")

        async def buy() -> dict[str, object]:
            order = await placed(
                api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1"
            )
            return await wait_order(api, token, str(order["id"]), {"EXECUTED"}, timeout=30)

        assert (await buy())["status"] == "EXECUTED"
        # Both processes ran meanwhile; only the holder held the shard.
        assert await _holder_pid(services.redis, key) == holder
        assert stack.procs[standby_name].returncode is None

        await stack.kill(holder_name)
        # The standby takes the lease once the dead holder's expires, and settles again.
        await eventually(
            lambda: _holder_pid(services.redis, key),
            lambda pid: pid == pids[standby_name],
            timeout=LEASE_S * 5,
            what="the standby holding the settlement lease",
        )
        assert (await buy())["status"] == "EXECUTED"

    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []
