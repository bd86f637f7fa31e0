"""Order notifications come from settlement, one per event, whatever settlement goes through:
SIGKILLed mid-batch (the batch in flight is applied again after the restart) and a whole
stream replayed with its cursor lost (every event applied a second time). And the platform's own
alert evaluator process, started with the stack as `bourse up` starts it, fires on a quote."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select

from bourse.keys import events_key, shard_for
from bourse.settings import Settings
from matching.wire import read_event
from models.notifications import Kind, Notification
from models.orders import FINAL_STATUSES, Order, OrderStatus
from models.quotes import QuoteData, write_quotes
from models.services import Services
from models.settlement import Settlement, SettlementCursor
from tests.notifications.helpers import CREATE_ALERT, INBOX, alert_input
from tests.orders.conftest import symbol
from tests.orders.helpers import PLACE, list_asset, trader, wait_book
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack


@pytest.fixture
async def stack_services(settings: Settings) -> AsyncIterator[tuple[Stack, Services]]:
    async with running_stack(settings) as stack, stack.services(pool_size=4) as services:
        yield stack, services


async def _counts(services: Services, user_ids: list[uuid.UUID]) -> dict[str, int]:
    """Notifications per (order, title) of these users: 1 each if nothing was doubled."""
    async with services.sessionmaker() as s:
        rows = await s.execute(
            select(Notification.order_id, Notification.title, func.count())
            .where(Notification.user_id.in_(user_ids), Notification.kind == Kind.ORDER)
            .group_by(Notification.order_id, Notification.title)
        )
        return {f"{r[0]}:{r[1]}": r[2] for r in rows}


async def test_a_filled_order_is_notified_once_through_kills_and_replays(
    stack_services: tuple[Stack, Services],
) -> None:
    stack, services = stack_services
    sym = symbol("NO")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    shard = shard_for(sym, stack.shards)
    stream = events_key(stack.prefix, shard)
    settlement = f"settlement-{shard}"
    async with stack.client() as api:
        users = [await trader(api, "50000") for _ in range(3)]
        tokens = [t for t, _ in users]
        user_ids = [u for _, u in users]
        # settlement down while 45 market buys fill against the liquidity provider
        await stack.kill(settlement)
        stack.env["BOURSE_SETTLEMENT_BATCH_SIZE"] = "20"
        placed: list[str] = []
        for i in range(45):
            fields = {"assetId": sym, "orderType": "BUY", "orderSubType": "MARKET",
                      "quantity": "1", "clientOrderId": uuid.uuid4().hex}  # fmt: skip
            body = await api.gql(PLACE, {"input": fields}, tokens[i % 3])
            placed.append(body["data"]["placeOrder"]["order"]["id"])

        async def cursor() -> str:
            async with services.sessionmaker() as s:
                found = await s.scalar(
                    select(SettlementCursor.last_id).where(SettlementCursor.stream == stream)
                )
            return found or "0-0"

        # back, and SIGKILLed as soon as it has committed a batch (the next is in flight)
        before = await cursor()
        await stack.start(settlement)
        await eventually(cursor, lambda c: c != before, timeout=30, interval=0.01)
        await stack.kill(settlement)
        await stack.start(settlement)

        async def settled() -> bool:
            async with services.sessionmaker() as s:
                left = await s.scalar(
                    select(func.count())
                    .select_from(Order)
                    .where(Order.user_id.in_(user_ids), Order.status.not_in(FINAL_STATUSES))
                )
            return left == 0

        await eventually(settled, timeout=60)
        async with services.sessionmaker() as s:
            executed = (
                await s.scalars(
                    select(Order.id).where(
                        Order.user_id.in_(user_ids), Order.status == OrderStatus.EXECUTED
                    )
                )
            ).all()
        assert len(executed) >= 40, "too few fills to prove anything"
        await eventually(lambda: _counts(services, user_ids), lambda c: len(c) >= len(executed))
        counts = await _counts(services, user_ids)
        filled = {k: v for k, v in counts.items() if ":Order filled" in k}
        assert {k.split(":")[0] for k in filled} == {str(o) for o in executed}
        assert set(counts.values()) == {1}

        # the whole stream applied again with its cursor gone: not one more notification
        await stack.kill(settlement)
        async with services.sessionmaker.begin() as s:
            await s.execute(delete(SettlementCursor).where(SettlementCursor.stream == stream))
        entries = [
            (stream, entry_id.decode(), read_event(fields[b"event"]))
            for entry_id, fields in await services.redis.xrange(stream)
        ]
        assert len(entries) > 45
        async with services.sessionmaker() as s, s.begin():
            replayed = await Settlement(services.ledger, services.on_fills).apply(s, entries)
        assert replayed.notifications == []
        assert await _counts(services, user_ids) == counts

        # and the customer sees one "filled" per order in the inbox
        inbox = await api.gql(INBOX, {"first": 100}, tokens[0])
        titles = [e["node"]["title"] for e in inbox["data"]["notifications"]["edges"]]
        mine = [o for o in placed[0::3] if uuid.UUID(o) in set(executed)]
        assert titles.count(f"Order filled: {sym}") == len(mine)

        # the platform's own evaluator process (`python -m workers.alerts`, started by the
        # stack as `bourse up` starts it) fires a price alert on a published quote
        created = await api.gql(CREATE_ALERT, alert_input(sym, "PRICE_ABOVE", "150"), tokens[1])
        assert created["data"]["createPriceAlert"]["errors"] == []

        async def alerted() -> list[str]:
            quote = QuoteData(sym, Decimal("150.5"), None, None, datetime.now(UTC))
            await write_quotes(services.redis, stack.prefix, [quote], publish=True)
            body = await api.gql(INBOX, {"first": 5}, tokens[1])
            return [
                e["node"]["kind"]
                for e in body["data"]["notifications"]["edges"]
                if e["node"]["kind"] == "PRICE_ALERT"
            ]

        assert await eventually(alerted, timeout=20, interval=0.5) == ["PRICE_ALERT"]
