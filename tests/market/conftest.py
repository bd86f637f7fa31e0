"""Fixtures of the market-data tests: the services driven directly, and staff tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.services import Services, open_services
from models.users import Role
from tests.accounts.helpers import PASSWORD, login, unique
from tests.support.server import Api


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=5
    ) as opened:
        yield opened


async def staff_token(api: Api, services: Services, role: Role) -> str:
    """A signed-in staff account (created through the service, as `bourse admin create` does)."""
    username, email = unique(role.value.lower())
    await services.accounts.register(username, email, PASSWORD, role=role)
    signed_in = await login(api, email)
    assert signed_in["errors"] == [], signed_in
    token: str = signed_in["token"]
    return token


@pytest.fixture
async def admin_token(api: Api, services: Services) -> str:
    return await staff_token(api, services, Role.ADMIN)
