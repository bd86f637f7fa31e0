"""Fault tests: SIGKILL the settlement consumer, a matching shard and the API process in the
middle of a burst of orders. After restarts every accepted order reaches a final or resting
state, no fill is applied twice, and the ledger's recompute check finds no difference."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from bourse.keys import events_key, shard_for
from bourse.settings import Settings
from matching.wire import decode_event
from models.ledger import JournalEntry
from models.orders import FINAL_STATUSES, Fill, Order
from models.services import Services
from models.settlement import FILL_NAMESPACE
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    PLACE,
    cancel_open_orders,
    grant_shares,
    list_asset,
    trader,
    wait_book,
)
from tests.support.faults import quiescent as _quiescent
from tests.support.server import Api
from tests.support.stack import Stack, running_stack

TRADERS = 6
BURST_SECONDS = 6.0


@pytest.fixture
async def chaos_stack(settings: Settings) -> AsyncIterator[tuple[Stack, Services]]:
    async with running_stack(settings) as stack, stack.services(pool_size=4) as services:
        yield stack, services


async def _trade(
    api: Api, token: str, sym: str, stop: asyncio.Event, accepted: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        side = rng.choice(["BUY", "SELL"])
        kind = rng.random()
        fields: dict[str, object] = {
            "assetId": sym, "orderType": side, "quantity": str(rng.randint(1, 5)),
            "clientOrderId": uuid.uuid4().hex,
        }  # fmt: skip
        if kind < 0.15:
            fields["orderSubType"] = "MARKET"
        else:
            fields["orderSubType"] = "LIMIT"
            fields["price"] = f"{Decimal(100) + Decimal(rng.randint(-60, 60)) / 100:.2f}"
            fields["timeInForce"] = rng.choice(["GTC", "GTC", "IOC", "DAY"])
        try:
            response = await api.post(PLACE, {"input": fields}, token)
        except httpx.HTTPError:
            await asyncio.sleep(0.1)  # the API is down: a client retries later
            continue
        if response.status_code != 200:
            await asyncio.sleep(0.1)
            continue
        payload = response.json()["data"]["placeOrder"]
        if payload["order"] is not None:
            accepted.append(payload["order"]["id"])
        await asyncio.sleep(rng.random() * 0.01)


async def test_sigkill_settlement_shard_and_api_mid_burst(
    chaos_stack: tuple[Stack, Services],
) -> None:
    stack, services = chaos_stack
    sym = symbol("K")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, stack.shards)

    async with stack.client() as api:
        tokens: list[str] = []
        user_ids: list[uuid.UUID] = []
        for _ in range(TRADERS):
            token, user_id = await trader(api, "100000")
            await grant_shares(services, user_id, sym, "1000")
            tokens.append(token)
            user_ids.append(user_id)

        stop = asyncio.Event()
        accepted: list[str] = []
        burst = [
            asyncio.create_task(_trade(api, t, sym, stop, accepted, seed))
            for seed, t in enumerate(tokens)
        ]
        chaos = [
            (f"settlement-{shard}", 1.0), (f"shard-{shard}", 2.5), ("api", 4.0),
        ]  # fmt: skip
        started = asyncio.get_running_loop().time()
        for name, at in chaos:
            await asyncio.sleep(max(0.0, started + at - asyncio.get_running_loop().time()))
            await stack.kill(name)
            await asyncio.sleep(0.5)
            await stack.start(name)
        await asyncio.sleep(max(0.0, started + BURST_SECONDS - asyncio.get_running_loop().time()))
        stop.set()
        await asyncio.gather(*burst)
        assert len(accepted) > 50, "the burst placed too few orders to prove anything"

        await _quiescent(services, user_ids)

        # Every accepted order is final or resting: cancelling the open ones ends them all
        # (an order the exchange never received could not be cancelled there).
        await cancel_open_orders(api, services, dict(zip(user_ids, tokens, strict=True)))

    await _quiescent(services, user_ids)
    async with services.sessionmaker() as s:
        orders = (await s.scalars(select(Order).where(Order.user_id.in_(user_ids)))).all()
        assert {str(o.id) for o in orders} >= set(accepted)
        assert all(o.status in FINAL_STATUSES for o in orders), [
            (o.id, o.status) for o in orders if o.status not in FINAL_STATUSES
        ]
        fills = (await s.scalars(select(Fill).where(Fill.asset_id == sym))).all()
        # Each fill once in the ledger, and each order's filled quantity is its fills' sum.
        refs = [uuid.uuid5(FILL_NAMESPACE, f.id) for f in fills]
        counted = await s.execute(
            select(JournalEntry.reference_id, func.count())
            .where(JournalEntry.reference_id.in_(refs))
            .group_by(JournalEntry.reference_id)
        )
        per_fill = {ref: n for ref, n in counted.all()}
        assert per_fill == dict.fromkeys(refs, 1)
        by_order: dict[uuid.UUID | None, Decimal] = {}
        for f in fills:
            for key in (f.maker_order_id, f.taker_order_id):
                by_order[key] = by_order.get(key, Decimal(0)) + f.quantity
        for o in orders:
            assert o.filled_quantity == by_order.get(o.id, Decimal(0)), o.id
        assert await services.ledger.check(s) == []
    assert len(fills) > 20, "too few fills to prove anything"

    # The events stream holds every fill exactly once, and each was applied exactly once.
    raw = await services.redis.xrange(events_key(stack.prefix, shard))
    fill_ids = [
        ev["fill_id"]
        for _, fields in raw
        if (ev := decode_event(fields[b"event"]))["event"] == "FILL" and ev["asset_id"] == sym
    ]
    assert len(fill_ids) == len(set(fill_ids))
    assert sorted(fill_ids) == sorted(f.id for f in fills)
