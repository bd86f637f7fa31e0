"""Fixtures of the support tests: services driven directly, alongside the session's API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.services import Services, open_services


@pytest.fixture(scope="module")
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=3
    ) as opened:
        yield opened
