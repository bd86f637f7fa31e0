"""Market hours: immediate orders refused while closed, resting orders queued for the open,
DAY orders expired once per close; and the outbox relay sending what a crash left unsent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from bourse.keys import input_key, shard_for
from bourse.settings import Settings
from matching.wire import decode_command
from models.assets import Asset, AssetClass, NewAsset
from models.errors import DomainError
from models.ledger import AccountKind
from models.orders import (
    OrderBook,
    OrderStatus,
    OrderSubType,
    OutboxEntry,
    PlaceOrderRequest,
    Side,
    TimeInForce,
)
from models.services import Services, open_services
from models.users import KycStatus, User
from tests.orders.conftest import symbol
from workers.settlement import DayExpiry, OutboxRelay, last_close

SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # markets closed
MONDAY_OPEN = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # 09:30 in New York


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


async def funded_user(services: Services, amount: str = "1000") -> uuid.UUID:
    user_id = uuid.uuid4()
    async with services.sessionmaker.begin() as s:
        s.add(
            User(
                id=user_id,
                username=f"m{user_id.hex[:12]}",
                email=f"m{user_id.hex[:12]}@example.com",
                password_hash="!",
                kyc_status=KycStatus.VERIFIED,  # KYC itself is tested in tests/compliance
            )
        )
    txn = await services.funds.deposit(user_id, amount, "USD", "sandbox:bank", uuid.uuid4().hex)
    assert txn.status == "COMPLETED"
    return user_id


async def equity(services: Services) -> str:
    sym = symbol("H")
    await services.assets.upsert_many(
        [NewAsset(sym, "Hours Inc.", AssetClass.EQUITY, "USD", "0.01", True, True, "10.00")]
    )
    return sym


def book_at(services: Services, now: datetime) -> OrderBook:
    return OrderBook(
        services.sessionmaker,
        services.ledger,
        services.exchange,
        _reference,
        services.orders.config,
        clock=lambda: now,
    )


async def _reference(asset: Asset) -> Decimal:
    return asset.reference_price


async def held(services: Services, user_id: uuid.UUID) -> object:
    async with services.sessionmaker() as s:
        for b in await services.ledger.balances(s, user_id, AccountKind.CASH):
            return b.held
    return None


async def test_market_orders_are_refused_while_closed(services: Services) -> None:
    sym = await equity(services)
    user = await funded_user(services)
    closed = book_at(services, SATURDAY)
    for sub, tif, price in (
        (OrderSubType.MARKET, TimeInForce.GTC, None),
        (OrderSubType.LIMIT, TimeInForce.IOC, "10.00"),
        (OrderSubType.LIMIT, TimeInForce.FOK, "10.00"),
    ):
        with pytest.raises(DomainError) as refused:
            await closed.place(
                user, PlaceOrderRequest(sym, Side.BUY, sub, tif, quantity="1", price=price)
            )
        assert [p.code for p in refused.value.problems] == ["MARKET_CLOSED"]
    assert await held(services, user) == 0


async def test_limit_orders_wait_for_the_open_and_can_be_cancelled_meanwhile(
    services: Services,
) -> None:
    sym = await equity(services)
    user = await funded_user(services)
    closed = book_at(services, SATURDAY)
    order = await closed.place(
        user,
        PlaceOrderRequest(
            sym, Side.BUY, OrderSubType.LIMIT, TimeInForce.DAY, quantity="2", price="9.50"
        ),
    )
    assert order.status is OrderStatus.PENDING
    assert order.queued_until == MONDAY_OPEN
    assert await held(services, user) == 19  # buying power is reserved while it waits
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))
    assert await services.redis.xlen(stream) == 2  # ADD_ASSET + REFERENCE_PRICE only

    # Before the open the relay leaves it alone (it reads the same clock as the order book).
    assert await OutboxRelay(services, clock=lambda: SATURDAY).step() == 0
    assert await services.redis.xlen(stream) == 2

    cancelled = await closed.cancel(user, str(order.id))
    assert cancelled.status is OrderStatus.CANCELLED
    assert await held(services, user) == 0
    async with services.sessionmaker() as s:
        row = (await s.scalars(select(OutboxEntry).where(OutboxEntry.order_id == order.id))).one()
    assert row.sent_at is not None  # consumed: it will never reach the exchange


async def test_a_queued_order_is_sent_when_its_market_opens(services: Services) -> None:
    sym = await equity(services)
    user = await funded_user(services)
    order = await book_at(services, SATURDAY).place(
        user,
        PlaceOrderRequest(
            sym, Side.BUY, OrderSubType.LIMIT, TimeInForce.GTC, quantity="1", price="9.50"
        ),
    )
    # The open arrives (moved into the past rather than waiting for Monday).
    async with services.sessionmaker.begin() as s:
        await s.execute(
            update(OutboxEntry)
            .where(OutboxEntry.order_id == order.id)
            .values(
                created_at=datetime(2026, 11, 19, tzinfo=UTC),
                available_at=datetime(2026, 11, 20, tzinfo=UTC),
            )
        )
    assert await OutboxRelay(services).step() == 1
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))
    entries = await services.redis.xrange(stream)
    sent = decode_command(entries[-1][1][b"command"])
    assert (sent["cmd"], sent["order_id"], sent["tif"]) == ("NEW_ORDER", str(order.id), "GTC")
    assert await OutboxRelay(services).step() == 0  # once


async def test_the_relay_resends_what_a_crash_left_unsent(services: Services) -> None:
    sym = await equity(services)
    user = await funded_user(services)
    order = await services.orders.place(
        user,
        PlaceOrderRequest(
            sym, Side.BUY, OrderSubType.LIMIT, TimeInForce.GTC, quantity="1", price="9.50"
        ),
    )
    await services.orders.aclose()  # its own sent-mark is written (batched) before we undo it
    # As if the API died between its commit and its XADD: the row is unsent and old.
    async with services.sessionmaker.begin() as s:
        await s.execute(
            update(OutboxEntry)
            .where(OutboxEntry.order_id == order.id)
            .values(
                sent_at=None,
                created_at=datetime(2026, 11, 20, tzinfo=UTC),
                available_at=datetime(2026, 11, 20, tzinfo=UTC),
            )
        )
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))
    before = await services.redis.xlen(stream)
    assert await OutboxRelay(services).step() == 1
    assert await services.redis.xlen(stream) == before + 1


def test_day_orders_end_at_the_close() -> None:
    friday_evening = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    # The day after Thanksgiving closes early, at 13:00 in New York.
    assert last_close("XNYS", friday_evening) == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert last_close("XNYS", SATURDAY) == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert last_close("24x7", SATURDAY) == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


async def test_expiry_is_sent_once_per_close(services: Services) -> None:
    sym = await equity(services)
    expiry = DayExpiry(services)
    first = await expiry.step(SATURDAY)
    assert sym in first
    assert sym not in await expiry.step(SATURDAY)
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))
    commands = [decode_command(e[1][b"command"]) for e in await services.redis.xrange(stream)]
    assert [c["cmd"] for c in commands if c["asset_id"] == sym].count("EXPIRE_DAY") == 1
    assert sym in await expiry.step(MONDAY_OPEN.replace(hour=22))  # Monday's close
