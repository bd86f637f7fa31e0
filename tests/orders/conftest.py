"""The platform as real processes (one stack per test module) and trading helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.services import Services
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings) as running:
        yield running


@pytest.fixture(scope="module")
async def stack_services(stack: Stack) -> AsyncIterator[Services]:
    """In-process services bound to the stack's key prefix (for setting up assets)."""
    async with stack.services(pool_size=4) as services:
        yield services
        # Stop quoting this module's assets: the next module's stack has other shards.
        async with services.sessionmaker.begin() as session:
            from sqlalchemy import update

            from models.liquidity import LiquidityConfig

            await session.execute(update(LiquidityConfig).values(enabled=False))


def symbol(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:6].upper()}"
