"""Concurrent guesses cannot outrun the lockout: attempts are counted before the password check."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import PASSWORD, codes, login, new_user
from tests.support.server import Api, running_api


@pytest.fixture
async def slow_unlock_api(settings: Settings) -> AsyncIterator[Api]:
    """A lockout that outlasts the burst (the shared API's is 2 s)."""
    async with running_api(settings.model_copy(update={"login_lockout_seconds": 60})) as api:
        yield api


async def burst(api: Api, email: str, passwords: list[str]) -> Counter[str]:
    results = await asyncio.gather(*(login(api, email, p) for p in passwords))
    return Counter(",".join(codes(r)) or "OK" for r in results)


async def test_sixty_concurrent_wrong_guesses_lock_the_account(
    slow_unlock_api: Api, settings: Settings
) -> None:
    api = slow_unlock_api
    _, email, _ = await new_user(api)
    seen = await burst(api, email, [f"Wrong-Pass-{i}" for i in range(60)])
    assert seen["INVALID_CREDENTIALS"] <= settings.login_max_failures, seen
    assert seen["ACCOUNT_LOCKED"] >= 60 - settings.login_max_failures, seen
    assert codes(await login(api, email, PASSWORD)) == ["ACCOUNT_LOCKED"]


async def test_a_burst_with_the_right_password_checks_at_most_the_limit(
    slow_unlock_api: Api, settings: Settings
) -> None:
    api = slow_unlock_api
    _, email, _ = await new_user(api)
    guesses = [f"Wrong-Pass-{i}" for i in range(19)] + [PASSWORD]
    seen = await burst(api, email, guesses)
    # The right password comes last, so it is normally refused unchecked. Were it among the
    # first checked, its success would reset the count (by design: the owner signed in).
    checked = seen["INVALID_CREDENTIALS"] + seen["OK"]
    if not seen["OK"]:
        assert checked <= settings.login_max_failures, seen
    assert seen["ACCOUNT_LOCKED"] == 20 - checked, seen
    assert seen["ACCOUNT_LOCKED"] > 0, seen
