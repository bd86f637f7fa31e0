"""Fixtures for the portfolio tests: services, assets with unique symbols, users, staff."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import update

from bourse.settings import Settings
from models.assets import Asset, AssetClass
from models.positions import apply_fill
from models.quotes import QuoteData, write_quotes
from models.services import Services, open_services
from models.users import Role, User
from tests.accounts.helpers import login, new_user
from tests.support.server import Api

MakeAssets = Callable[..., Awaitable[list[str]]]


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=5
    ) as opened:
        yield opened


@pytest.fixture
def make_assets(services: Services) -> MakeAssets:
    """`n` new assets with unique symbols (reference price `price`), optionally quoted live."""

    async def make(
        n: int = 1,
        *,
        price: str = "100",
        currency: str = "USD",
        live: str | None = None,
        tag: str = "P",
    ) -> list[str]:
        run = uuid.uuid4().hex[:6].upper()
        symbols = [f"{tag}{run}{i}" for i in range(n)]
        async with services.sessionmaker.begin() as s:
            s.add_all(
                Asset(symbol=sym, name=f"Test {sym}", asset_class=AssetClass.EQUITY,
                      currency=currency, tick_size=Decimal("0.01"),
                      quantity_increment=Decimal("0.000001"), fractionable=True, tradable=True,
                      market_calendar="24x7", reference_price=Decimal(price), collar_bps=500)
                for sym in symbols
            )  # fmt: skip
        if live is not None:
            await set_price(services, symbols, live)
        return symbols

    return make


async def set_price(services: Services, symbols: list[str], price: str) -> None:
    await write_quotes(
        services.redis,
        services.settings.redis_prefix,
        [QuoteData(s, Decimal(price), None, None, datetime.now().astimezone()) for s in symbols],
    )


async def customer(api: Api, tag: str = "pf") -> tuple[str, uuid.UUID]:
    """A registered, signed-in customer: (access token, user id)."""
    _, _, signed_in = await new_user(api, tag)
    return signed_in["token"], uuid.UUID(signed_in["user"]["id"])


async def admin(api: Api, services: Services) -> str:
    _, email, signed_in = await new_user(api, "adm")
    async with services.sessionmaker.begin() as s:
        await s.execute(
            update(User)
            .where(User.id == uuid.UUID(signed_in["user"]["id"]))
            .values(role=Role.ADMIN)
        )
    again = await login(api, email)
    token: str = again["token"]
    return token


async def fill(
    services: Services,
    user_id: uuid.UUID,
    asset_id: str,
    side: str,
    quantity: str,
    price: str,
    at: datetime,
    fill_id: str | None = None,
) -> bool:
    """One user side of a fill, applied the way the settlement will: inside a transaction."""
    async with services.sessionmaker.begin() as s:
        return await apply_fill(
            s, user_id=user_id, asset_id=asset_id, side=side, quantity=Decimal(quantity),
            price=Decimal(price), fill_id=fill_id or uuid.uuid4().hex, executed_at=at,
        )  # fmt: skip
