"""Fixtures for driving the ledger and funds services directly (no HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bourse.settings import Settings
from models.services import Services, open_services
from models.users import KycStatus, User


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=10
    ) as opened:
        yield opened


@pytest.fixture
def make_user(services: Services) -> Callable[[], Awaitable[uuid.UUID]]:
    """A user row without the cost of password hashing (the ledger only needs the id),
    identity already verified (KYC is tested through the API in tests/compliance)."""

    async def make() -> uuid.UUID:
        user_id = uuid.uuid4()
        async with services.sessionmaker.begin() as s:
            s.add(
                User(
                    id=user_id,
                    username=f"l{user_id.hex[:12]}",
                    email=f"l{user_id.hex[:12]}@example.com",
                    password_hash="!",
                    kyc_status=KycStatus.VERIFIED,
                )
            )
        return user_id

    return make
