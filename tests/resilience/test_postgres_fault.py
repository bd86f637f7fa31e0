"""PostgreSQL stopped for 10 s in the middle of a burst of orders, then back: a PostgreSQL of
the module's own (the embedded launcher's, `tests/support/private_servers.py`), the whole
platform on it (and on the run's Redis, under a key prefix of its own). Nothing else restarts.

While it is down the API answers within a bound: `/readyz` 503 naming `postgres`, mutations
`SERVICE_UNAVAILABLE` in their payload, query fields `SERVICE_UNAVAILABLE` in
`extensions.code`; the engine keeps matching (its events wait in Redis). Afterwards `/readyz`
is 200 again within READY_BOUND_S, the resting order placed before is still there with its
hold, and the operator's checks pass (`tests/support/faults.py`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bourse.migrate import upgrade_async
from bourse.settings import Settings
from models.services import Services, open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import PLACE, cancel_open_orders, list_asset, wait_book
from tests.resilience.conftest import traders
from tests.support.faults import (
    Burst,
    assert_consistent,
    place_resting,
    quiescent,
    resting_survived,
    run_burst,
    wait_ready,
)
from tests.support.private_servers import PrivatePostgres
from tests.support.stack import Stack, running_stack

READY_BOUND_S = 20.0  # /readyz 200 again within this long of PostgreSQL being back
REQUEST_BOUND_S = 8.0  # no request waits longer than this on a dead PostgreSQL
OUTAGE_S = 10.0


@dataclass
class PgPlatform:
    stack: Stack
    services: Services
    postgres: PrivatePostgres


@pytest.fixture(scope="module")
async def pg_platform(settings: Settings) -> AsyncIterator[PgPlatform]:
    # PostgreSQL refuses to run as root: the embedded launcher runs it as `nobody`, who must
    # be able to reach its directory.
    directory = Path(tempfile.mkdtemp(prefix="bourse-pg-"))
    os.chmod(directory, 0o755)
    postgres = PrivatePostgres(directory)
    url = await asyncio.to_thread(postgres.start)
    try:
        await upgrade_async(url)
        own = settings.model_copy(update={"database_url": url})
        async with running_stack(own) as stack:
            s = stack.settings
            assert s.redis_url
            async with open_services(s, url, s.redis_url, pool_size=4) as services:
                yield PgPlatform(stack, services, postgres)
    finally:
        await asyncio.to_thread(postgres.stop)


async def test_postgres_stopped_for_10_seconds(pg_platform: PgPlatform) -> None:
    p = pg_platform
    services = p.services
    sym = symbol("PG")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    async with p.stack.client() as api:
        tokens, user_ids = await traders(api, services, sym)
        resting = await place_resting(api, tokens[0], sym, "63.89")

        out = Burst()
        stop, tasks = await run_burst(api, tokens, sym, out)
        await asyncio.sleep(2.5)
        down = time.monotonic()
        await asyncio.to_thread(p.postgres.stop)
        try:
            await asyncio.sleep(1.0)
            started = time.monotonic()
            probe = await api.http.get("/readyz", timeout=30)
            assert time.monotonic() - started < REQUEST_BOUND_S
            assert probe.status_code == 503, probe.text
            assert "postgres" in probe.json()["down"], probe.text
            assert (await api.http.get("/healthz")).status_code == 200
            started = time.monotonic()
            refused = await api.gql(
                PLACE,
                {"input": {"assetId": sym, "orderType": "BUY", "orderSubType": "MARKET",
                           "quantity": "1"}},
                tokens[2],
            )  # fmt: skip
            assert time.monotonic() - started < REQUEST_BOUND_S
            assert [e["code"] for e in refused["data"]["placeOrder"]["errors"]] == [
                "SERVICE_UNAVAILABLE"
            ], refused
            started = time.monotonic()
            query = await api.gql("{ orders(first: 1) { edges { cursor } } }", token=tokens[3])
            assert time.monotonic() - started < REQUEST_BOUND_S
            codes = [(e.get("extensions") or {}).get("code") for e in query.get("errors") or []]
            assert codes == ["SERVICE_UNAVAILABLE"], query
            # A token this API process has not seen (not in its session cache) needs
            # PostgreSQL to be looked up: an answer with the code, not a 500.
            unseen = await api.gql("{ orders(first: 1) { edges { cursor } } }", token="x" * 43)
            codes = [(e.get("extensions") or {}).get("code") for e in unseen.get("errors") or []]
            assert codes == ["SERVICE_UNAVAILABLE"], unseen
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        finally:
            await asyncio.to_thread(p.postgres.start)
        ready = asyncio.create_task(wait_ready(api, READY_BOUND_S))  # from PostgreSQL back
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*tasks)
        ready_after = await ready
        print(f"postgres stopped 10 s: /readyz 200 {ready_after:.1f}s after it was back")
        assert out.unavailable > 0, "no order was refused while PostgreSQL was down"
        assert out.failed == 0, f"requests failed without an answer: {out}"

        await quiescent(services, user_ids)
        await resting_survived(api, services, tokens[0], resting, "63.89")
        await cancel_open_orders(api, services, dict(zip(user_ids, tokens, strict=True)))
        await quiescent(services, user_ids)
        fills = await assert_consistent(services, user_ids, out.accepted, sym)
        assert len(out.accepted) > 30, f"too few orders to prove anything: {out}"
        assert len(fills) > 10, "too few fills to prove anything"
