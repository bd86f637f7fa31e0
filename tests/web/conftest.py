"""The browser flows' platform: one stack per test module (a module whose flow needs other
settings defines its own `stack`), and the services beside it for listing assets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.services import Services
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings, shards=1, liquidity=False) as running:
        yield running


@pytest.fixture(scope="module")
async def services(stack: Stack) -> AsyncIterator[Services]:
    async with stack.services(pool_size=2) as opened:
        yield opened
