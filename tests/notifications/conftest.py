"""Fixtures for the notification tests: services bound to the session's API, assets with live
quotes, and an alert evaluator running in the test's loop with a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.keys import notification_channel
from bourse.settings import Settings
from models.assets import Asset, AssetClass
from models.quotes import QuoteData, write_quotes
from models.services import Services, open_services
from tests.accounts.helpers import new_user
from tests.support.server import Api
from workers.alerts import Evaluator


class Clock:
    """The real clock plus an offset the test moves forward (re-arming cool-downs): the API
    under test stamps new alerts with the real clock, so this one must not lag behind it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=5
    ) as opened:
        yield opened


MakeAsset = Callable[..., Awaitable[str]]


@pytest.fixture
def make_asset(services: Services) -> MakeAsset:
    async def make(price: str = "100", *, previous_close: str | None = None) -> str:
        symbol = f"N{uuid.uuid4().hex[:6].upper()}"
        async with services.sessionmaker.begin() as s:
            s.add(
                Asset(
                    symbol=symbol,
                    name=f"Test {symbol}",
                    asset_class=AssetClass.EQUITY,
                    currency="USD",
                    tick_size=Decimal("0.01"),
                    quantity_increment=Decimal("0.000001"),
                    fractionable=True,
                    tradable=True,
                    market_calendar="24x7",
                    reference_price=Decimal(price),
                    collar_bps=500,
                    previous_close=None if previous_close is None else Decimal(previous_close),
                )
            )
        await tick(services, symbol, price)
        return symbol

    return make


async def tick(services: Services, symbol: str, price: str) -> None:
    """A price event exactly as the market-data feed sends it: the quote key and its PUBLISH."""
    quote = QuoteData(symbol, Decimal(price), None, None, datetime.now(UTC))
    await write_quotes(services.redis, services.settings.redis_prefix, [quote], publish=True)


async def customer(api: Api, tag: str = "nt") -> tuple[str, uuid.UUID, str]:
    """(token, user id, email) of a new signed-in customer."""
    _, email, signed_in = await new_user(api, tag)
    return signed_in["token"], uuid.UUID(signed_in["user"]["id"]), email


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def evaluator(services: Services, clock: Clock) -> AsyncIterator[Evaluator]:
    """The alert evaluator, as `python -m workers.alerts` runs it, in this loop."""
    ev = Evaluator(services.alerts, services.notifier, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(
        ev.run(services.redis, services.settings.redis_prefix, stop, base_refresh=3600)
    )
    await asyncio.wait_for(ev.ready.wait(), 10)
    try:
        yield ev
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)  # an evaluator that died fails the test here


async def live_listeners(services: Services, user_id: uuid.UUID) -> int:
    """How many subscribers the user's notification channel has (the stream is live)."""
    channel = notification_channel(services.settings.redis_prefix, str(user_id))
    found = await services.redis.pubsub_numsub(channel)
    return int(found[0][1]) if found else 0
