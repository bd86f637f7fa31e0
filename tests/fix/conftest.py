"""The platform as real processes with the FIX gateway on a port of its own (one per module)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bourse.settings import Settings
from models.services import Services
from tests.accounts.helpers import new_user
from tests.funds.helpers import deposit
from tests.support.polling import eventually
from tests.support.server import Api, free_port
from tests.support.stack import Stack, running_stack
from workers.fix.gateway import partners_of

PASSWORD = "fix-Partner-pass-2026"


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings.model_copy(update={"fix_port": free_port()})) as running:
        port = running.settings.fix_port
        assert port
        assert running.port != port

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, timeout=30, what="the FIX gateway listening")
        yield running


@pytest.fixture(scope="module")
async def stack_services(stack: Stack) -> AsyncIterator[Services]:
    async with stack.services(pool_size=4) as services:
        yield services
        async with services.sessionmaker.begin() as session:
            from sqlalchemy import update

            from models.liquidity import LiquidityConfig

            await session.execute(update(LiquidityConfig).values(enabled=False))


@dataclass(frozen=True)
class Customer:
    token: str
    user_id: uuid.UUID
    email: str
    comp_id: str


async def fix_customer(api: Api, services: Services, cash: str = "10000") -> Customer:
    """A signed-up customer with ``cash`` deposited and a FIX partner acting for it."""
    _, email, login = await new_user(api, "fix")
    token: str = login["token"]
    if cash != "0":
        assert (await deposit(api, token, cash))["errors"] == []
    me = await api.gql("{ me { id } }", token=token)
    comp_id = f"P{uuid.uuid4().hex[:10].upper()}"
    await partners_of(services).add_partner(comp_id, email, PASSWORD)
    return Customer(token, uuid.UUID(me["data"]["me"]["id"]), email, comp_id)
