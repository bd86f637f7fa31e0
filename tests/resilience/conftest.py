"""One platform (every process real, `tests/support/stack.py`) on a Redis of the module's own
(`tests/support/private_servers.py`), to break on purpose."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bourse.settings import Settings
from models.services import Services, open_services
from tests.orders.helpers import grant_shares, trader
from tests.support.private_servers import PrivateRedis
from tests.support.server import Api
from tests.support.stack import Stack

TRADERS = 6
RECONCILE_INTERVAL_S = 1.0  # the shards' reconciler, every second here (10 s by default)


@dataclass
class Platform:
    stack: Stack
    services: Services
    redis: PrivateRedis


@pytest.fixture(scope="module")
async def private_redis() -> AsyncIterator[PrivateRedis]:
    with tempfile.TemporaryDirectory(prefix="bourse-redis-") as directory:
        server = PrivateRedis(Path(directory), appendonly=True)
        await server.start()
        try:
            yield server
        finally:
            await server.kill()


@pytest.fixture(scope="module")
async def platform(settings: Settings, private_redis: PrivateRedis) -> AsyncIterator[Platform]:
    own = settings.model_copy(update={"redis_url": private_redis.url})
    stack = Stack(own)
    stack.env["BOURSE_RECONCILE_INTERVAL_SECONDS"] = str(RECONCILE_INTERVAL_S)
    try:
        await stack.start_all()
        s = stack.settings
        assert s.database_url
        async with open_services(s, s.database_url, private_redis.url, pool_size=4) as services:
            yield Platform(stack, services, private_redis)
    finally:
        await stack.stop_all()


async def traders(api: Api, services: Services, sym: str) -> tuple[list[str], list[uuid.UUID]]:
    tokens: list[str] = []
    user_ids: list[uuid.UUID] = []
    for _ in range(TRADERS):
        token, user_id = await trader(api, "100000")
        await grant_shares(services, user_id, sym, "1000")
        tokens.append(token)
        user_ids.append(user_id)
    return tokens, user_ids
