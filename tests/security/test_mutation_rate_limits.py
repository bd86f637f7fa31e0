"""Every mutation is rate limited per user and per address: past the limit the payload says
RATE_LIMITED and nothing happens; another user (or address) is not affected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import codes, new_user
from tests.support.server import Api, running_api

CREATE = """mutation($n: String!) { createWatchlist(input: {name: $n, assetIds: []}) {
  watchlist { id } errors { code } } }"""
LISTS = "{ watchlists { id name } }"


@pytest.fixture(scope="module")
async def limited(settings: Settings) -> AsyncIterator[Api]:
    update = {
        "mutations_per_minute_per_user": 8,
        "mutations_per_minute_per_ip": 40,
        # Its own counters, so other tests' mutations are not counted here.
        "redis_prefix": f"{settings.redis_prefix}ratelimit:",
        "login_ip_max_failures": 1000,
    }
    async with running_api(settings.model_copy(update=update)) as api:
        yield api


async def test_a_user_past_the_limit_is_refused_and_nothing_happens(limited: Api) -> None:
    _, _, alice = await new_user(limited, "rla", verified=False)  # register + login: 2 of 40
    found = [
        codes(
            (await limited.gql(CREATE, {"n": f"L{i}"}, alice["token"]))["data"]["createWatchlist"]
        )
        for i in range(10)
    ]
    assert found[:8] == [[]] * 8
    assert found[8:] == [["RATE_LIMITED"], ["RATE_LIMITED"]]
    names = {
        w["name"] for w in (await limited.gql(LISTS, token=alice["token"]))["data"]["watchlists"]
    }
    assert "L8" not in names
    assert "L9" not in names
    assert len(names & {f"L{i}" for i in range(8)}) == 8

    _, _, bob = await new_user(limited, "rlb", verified=False)
    ok = await limited.gql(CREATE, {"n": "mine"}, bob["token"])
    assert codes(ok["data"]["createWatchlist"]) == []


async def test_an_address_past_its_limit_is_refused_even_anonymously(limited: Api) -> None:
    request = 'mutation { requestPasswordReset(email: "x@example.com") { errors { code } } }'
    found = [codes((await limited.gql(request))["data"]["requestPasswordReset"]) for _ in range(40)]
    assert ["RATE_LIMITED"] in found  # the module's earlier mutations count too: 40 per address
