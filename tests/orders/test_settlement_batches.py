"""Set-based settlement: big batches cost a fixed number of statements, and a settlement
consumer SIGKILLed in the middle of big batches loses nothing and applies nothing twice: the
ledger, the orders, the positions and their FIFO lots all agree afterwards."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.keys import events_key, shard_for
from bourse.settings import Settings
from models.ledger import AccountKind, JournalEntry
from models.orders import FINAL_STATUSES, Fill, Order
from models.positions import Lot, Position, PositionFill
from models.services import Services
from models.settlement import FILL_NAMESPACE, SettlementCursor
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    PLACE,
    cancel_open_orders,
    grant_shares,
    list_asset,
    trader,
    wait_book,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack, running_stack
from workers.settlement import SettlementConsumer

TRADERS = 6


@pytest.fixture
async def stack_services(settings: Settings) -> AsyncIterator[tuple[Stack, Services]]:
    async with running_stack(settings) as stack, stack.services(pool_size=4) as services:
        yield stack, services


async def _backlog(api: Api, tokens: list[str], sym: str, orders: int, seed: int) -> list[str]:
    """``orders`` orders from the traders, placed as fast as the API takes them: market
    orders against the liquidity provider, and limit orders crossing each other near 100 (both
    sides ours), so a batch holds buys and sells of the same users."""
    rng = random.Random(seed)
    accepted: list[str] = []

    async def one(token: str) -> None:
        side = rng.choice(["BUY", "SELL"])
        fields: dict[str, Any] = {
            "assetId": sym, "orderType": side, "quantity": str(rng.randint(1, 4)),
            "clientOrderId": uuid.uuid4().hex,
        }  # fmt: skip
        if rng.random() < 0.5:
            fields["orderSubType"] = "MARKET"
        else:
            fields["orderSubType"] = "LIMIT"
            fields["price"] = f"{Decimal(100) + Decimal(rng.randint(-15, 15)) / 100:.2f}"
        body = await api.gql(PLACE, {"input": fields}, token)
        order = body["data"]["placeOrder"]["order"]
        if order is not None:
            accepted.append(order["id"])

    for start in range(0, orders, len(tokens)):
        await asyncio.gather(*(one(t) for t in tokens[: orders - start]))
    return accepted


async def _settled_upto(services: Services, stream: str) -> str:
    async with services.sessionmaker() as s:
        last = await s.scalar(
            select(SettlementCursor.last_id).where(SettlementCursor.stream == stream)
        )
    return last or "0-0"


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _assert_consistent(
    s: AsyncSession, services: Services, user_ids: list[uuid.UUID], sym: str
) -> list[Fill]:
    """Each fill once in the ledger and once per user side in the positions; each order's
    filled quantity is its fills' sum; each position equals the user's SHARES account and its
    open lots; the ledger's recompute finds no difference."""
    fills = list((await s.scalars(select(Fill).where(Fill.asset_id == sym))).all())
    refs = [uuid.uuid5(FILL_NAMESPACE, f.id) for f in fills]
    counted = await s.execute(
        select(JournalEntry.reference_id, func.count())
        .where(JournalEntry.reference_id.in_(refs))
        .group_by(JournalEntry.reference_id)
    )
    assert dict(counted.all()) == dict.fromkeys(refs, 1)
    sides = sum((f.maker_user_id is not None) + (f.taker_user_id is not None) for f in fills)
    applied = await s.scalar(
        select(func.count()).select_from(PositionFill).where(PositionFill.asset_id == sym)
    )
    assert applied == sides
    orders = (await s.scalars(select(Order).where(Order.user_id.in_(user_ids)))).all()
    by_order: dict[uuid.UUID | None, Decimal] = {}
    for f in fills:
        for key in (f.maker_order_id, f.taker_order_id):
            by_order[key] = by_order.get(key, Decimal(0)) + f.quantity
    for o in orders:
        assert o.filled_quantity == by_order.get(o.id, Decimal(0)), o.id
    for user_id in user_ids:
        position = await s.get(Position, (user_id, sym))
        assert position is not None
        shares = next(
            b for b in await services.ledger.balances(s, user_id, AccountKind.SHARES)
            if b.asset == sym
        )  # fmt: skip
        lots = (
            await s.execute(
                select(func.sum(Lot.remaining_quantity), func.sum(Lot.remaining_cost)).where(
                    Lot.user_id == user_id, Lot.asset_id == sym
                )
            )
        ).one()
        assert position.quantity == shares.total == lots[0], user_id
        assert position.cost_basis == lots[1], user_id
    assert await services.ledger.check(s) == []
    return fills


async def test_settlement_killed_mid_batch_loses_and_repeats_nothing(
    stack_services: tuple[Stack, Services],
) -> None:
    stack, services = stack_services
    sym = symbol("B")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, stack.shards)
    stream = events_key(stack.prefix, shard)
    settlement = f"settlement-{shard}"

    async with stack.client() as api:
        tokens: list[str] = []
        user_ids: list[uuid.UUID] = []
        for _ in range(TRADERS):
            token, user_id = await trader(api, "100000")
            await grant_shares(services, user_id, sym, "1000")
            tokens.append(token)
            user_ids.append(user_id)

        # Settlement down: the engine keeps matching, the events pile up in the stream. It
        # comes back with batches of 150 events (~60 fills), so the backlog takes several.
        await stack.kill(settlement)
        stack.env["BOURSE_SETTLEMENT_BATCH_SIZE"] = "150"
        accepted = await _backlog(api, tokens, sym, 240, seed=7)
        assert len(accepted) > 200
        head = (await services.redis.xrevrange(stream, count=1))[0][0].decode()

        # Two kills, each as soon as the consumer has committed at least one batch of the
        # backlog and while more is left: the batch in flight is lost and comes again.
        for _ in range(2):
            before = await _settled_upto(services, stream)
            await stack.start(settlement)

            async def advanced(since: str = before) -> str | None:
                now = await _settled_upto(services, stream)
                return now if _key(now) > _key(since) else None

            reached = await eventually(advanced, timeout=30, interval=0.01)
            await stack.kill(settlement)
            assert _key(reached) < _key(head), "the backlog was settled before the kill"
        await stack.start(settlement)

        async def drained() -> bool:
            return _key(await _settled_upto(services, stream)) >= _key(head)

        await eventually(drained, timeout=60)

        await cancel_open_orders(api, services, dict(zip(user_ids, tokens, strict=True)))

        async def all_final() -> bool:
            async with services.sessionmaker() as s:
                left = await s.scalar(
                    select(func.count())
                    .select_from(Order)
                    .where(Order.user_id.in_(user_ids), Order.status.not_in(FINAL_STATUSES))
                )
            return left == 0

        await eventually(all_final, timeout=60)

    async with services.sessionmaker() as s:
        orders = (await s.scalars(select(Order.id).where(Order.user_id.in_(user_ids)))).all()
        assert {str(o) for o in orders} >= set(accepted)
        fills = await _assert_consistent(s, services, user_ids, sym)
    assert len(fills) > 150, "too few fills to prove anything"


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    stack_services: tuple[Stack, Services],
) -> None:
    """Settled in-process with a statement counter: batches of 40 and of 400 events run the
    same statements (the set-based path), not a number that grows with the fills."""
    stack, services = stack_services
    sym = symbol("Q")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, stack.shards)
    stream = events_key(stack.prefix, shard)

    async with stack.client() as api:
        tokens: list[str] = []
        user_ids: list[uuid.UUID] = []
        for _ in range(TRADERS):
            token, user_id = await trader(api, "100000")
            await grant_shares(services, user_id, sym, "1000")
            tokens.append(token)
            user_ids.append(user_id)
        await stack.kill(f"settlement-{shard}")
        await _backlog(api, tokens, sym, 180, seed=11)

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]).split(None, 1)[0])

    engine = services.sessionmaker.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        per_batch: dict[int, int] = {}
        for size in (40, 400):
            consumer = SettlementConsumer(services, [shard], batch_size=size)
            consumer._pending_done = True  # this test's consumer has nothing pending
            await consumer.ensure_groups()
            statements.clear()
            read = await consumer.step(block_ms=100)
            assert read == size or size == 400, (size, read)
            per_batch[read] = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    small, large = sorted(per_batch)
    assert large > 5 * small, per_batch  # the second batch really is ten times bigger
    # A fixed number of statements, give or take ledger accounts seen for the first time (two
    # lookups each) and the orders' UPDATE split by which columns changed: a few dozen for a
    # batch of ~150 fills, where a statement set per fill would be thousands.
    assert per_batch[large] <= 40, per_batch
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []
    assert _key(await _settled_upto(services, stream)) > (0, 0)
