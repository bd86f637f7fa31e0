"""The platform as real processes (one stack per module), its job worker, and S3 helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from models.services import Services, open_services
from tests.support.stack import Stack, running_stack
from workers.jobs import build_worker


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings, liquidity=False) as running:
        yield running


@pytest.fixture(scope="module")
async def stack_services(stack: Stack) -> AsyncIterator[Services]:
    """In-process services bound to the stack's key prefix and the run's bucket."""
    async with stack.services(pool_size=4) as services:
        yield services


@pytest.fixture(scope="module")
async def stack_worker(stack: Stack) -> AsyncIterator[None]:
    """The arq worker of the stack's queue (documents, withdrawals), in this event loop."""
    s = stack.settings
    assert s.redis_url
    worker = build_worker(s, s.redis_url, database_url=s.database_url)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """In-process services on the run's database, key prefix and bucket."""
    assert settings.database_url
    assert settings.redis_url
    async with open_services(
        settings, settings.database_url, settings.redis_url, pool_size=4
    ) as opened:
        yield opened
