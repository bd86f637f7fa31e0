"""Read replicas (issue 21 item 3) on a real streaming replica (`tests/support/pg_replica.py`):
a primary of the module's own and a `pg_basebackup -R` replica of it.

What an operator checks: the lag-tolerant reads run on the replica (the session used is in
recovery, and a row the paused replica has not replayed is not seen through them); the lag is
measured and exported; past the bound the same reads answer from the primary with the fresh
row, and go back once the replica catches up; a user's own order is found the moment it is
placed while the replica's replay is paused (read-your-writes on the primary); with the
replica stopped, the reads still answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from bourse.app.status import collect
from bourse.migrate import upgrade_async
from bourse.settings import Settings
from models.news import NewsItemData
from models.services import Services, open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import ORDERS, list_asset, placed, trader
from tests.support.pg_replica import ReplicatedPostgres, StreamingReplica
from tests.support.polling import eventually
from tests.support.server import Api, running_api

CHECK_S = 0.2


@pytest.fixture(scope="module")
async def replicated() -> AsyncIterator[ReplicatedPostgres]:
    async with ReplicatedPostgres() as pg:
        await upgrade_async(pg.url)
        assert pg.replica is not None
        await pg.replica.wait_streaming()
        yield pg


def replica_of(pg: ReplicatedPostgres) -> StreamingReplica:
    assert pg.replica is not None
    return pg.replica


def own_settings(settings: Settings, pg: ReplicatedPostgres, max_lag: float) -> Settings:
    return settings.model_copy(
        update={
            "database_url": pg.url,
            "database_replica_url": replica_of(pg).url,
            "replica_max_lag_seconds": max_lag,
            "replica_check_seconds": CHECK_S,
        }
    )


async def taking_reads(services: Services) -> None:
    replica = services.replicas.replicas[0]
    await eventually(
        lambda: _ready(services), timeout=15, what=f"replica taking reads ({replica.detail})"
    )


async def _ready(services: Services) -> bool:
    return services.replicas.replicas[0].available


async def in_recovery(services: Services) -> bool:
    async with services.reads() as s:
        return bool(await s.scalar(text("SELECT pg_is_in_recovery()")))


def news_item(tag: str) -> NewsItemData:
    ident = f"replica-test-{tag}-{uuid.uuid4().hex[:8]}"
    return NewsItemData(
        id=ident,
        asset_ids=(),
        headline=f"Headline {ident}",
        summary="A test item written on the primary.",
        source="test",
        url=f"https://example.test/{ident}",
        published_at=datetime.now(UTC),
    )


async def news_ids(services: Services) -> set[str]:
    return {n.id for n in await services.news.latest(None, 50)}


def api_services(api: Api) -> Services:
    assert api.app is not None
    services: Services = api.app.state.services
    return services


async def api_news_ids(api: Api) -> set[str]:
    body = await api.gql("query($n: Int) { news(first: $n) { id } }", {"n": 50})
    assert "errors" not in body, body
    return {n["id"] for n in body["data"]["news"]}


def gauge(name: str, replica: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"replica": replica})


async def test_no_replica_configured_reads_stay_on_the_primary(
    settings: Settings, replicated: ReplicatedPostgres
) -> None:
    own = settings.model_copy(update={"database_url": replicated.url})
    async with open_services(own, replicated.url, own.redis_url or "") as services:
        assert services.replicas.replicas == []
        assert services.reads is services.sessionmaker
        assert not await in_recovery(services)


async def test_lag_tolerant_reads_run_on_the_replica(
    settings: Settings, replicated: ReplicatedPostgres
) -> None:
    replica = replica_of(replicated)
    own = own_settings(settings, replicated, max_lag=60.0)
    async with (
        open_services(own, replicated.url, own.redis_url or "") as services,
        running_api(own) as api,
    ):
        await taking_reads(services)
        await taking_reads(api_services(api))
        name = services.replicas.replicas[0].name
        assert await in_recovery(services)  # the seam's session is on the replica
        async with services.sessionmaker() as s:  # the primary's is not
            assert not await s.scalar(text("SELECT pg_is_in_recovery()"))
        assert gauge("bourse_replica_available", name) == 1
        lag = gauge("bourse_replica_lag_seconds", name)
        assert lag is not None
        assert lag < 1.0  # an idle primary does not look lagged

        await replica.pause_replay()
        try:
            item = news_item("stale")
            assert await services.news.ingest([item]) == 1
            # Within the (generous) bound the replica still serves, and has not replayed it.
            assert item.id not in await news_ids(services)
            async with services.sessionmaker() as s:
                on_primary = await s.scalar(
                    text("SELECT count(*) FROM news_items WHERE id = :i"), {"i": item.id}
                )
            assert on_primary == 1
            await eventually(
                lambda: _lag_above(name, 0.5), timeout=10, what="the lag gauge growing"
            )
            assert services.replicas.replicas[0].available
            assert item.id not in await news_ids(services)
            assert item.id not in await api_news_ids(api)  # the `news` query: the same
        finally:
            await replica.resume_replay()
        await eventually(
            lambda: news_ids(services), lambda ids: item.id in ids, what="the replayed row"
        )
        assert await in_recovery(services)

        lines = await collect(own, replicated.url, own.redis_url or "")
        shown = [line for line in lines if line.component == f"replica {name}"]
        assert len(shown) == 1, lines
        assert shown[0].ok, lines
        assert shown[0].detail.startswith("lag "), shown


async def _lag_above(name: str, bound: float) -> bool:
    lag = gauge("bourse_replica_lag_seconds", name)
    return lag is not None and lag > bound


async def test_past_the_bound_reads_fall_back_to_the_primary_and_come_back(
    settings: Settings, replicated: ReplicatedPostgres
) -> None:
    replica = replica_of(replicated)
    own = own_settings(settings, replicated, max_lag=1.0)
    async with (
        open_services(own, replicated.url, own.redis_url or "") as services,
        running_api(own) as api,
    ):
        await taking_reads(services)
        await taking_reads(api_services(api))
        name = services.replicas.replicas[0].name
        await replica.pause_replay()
        try:
            item = news_item("fresh")
            await services.news.ingest([item])
            # Paused past the bound: the same read answers from the primary, fresh row in.
            ids = await eventually(
                lambda: news_ids(services),
                lambda ids: item.id in ids,
                timeout=10,
                what="the fresh row through the fallback",
            )
            assert item.id in ids
            await eventually(
                lambda: api_news_ids(api),
                lambda ids: item.id in ids,
                timeout=10,
                what="the fresh row through the `news` query",
            )
            assert not services.replicas.replicas[0].available
            assert not await in_recovery(services)
            assert gauge("bourse_replica_available", name) == 0
            lag = gauge("bourse_replica_lag_seconds", name)
            assert lag is not None
            assert lag > 1.0
            # The replica itself really is behind: the fallback is what answered.
            behind = f"SELECT count(*) FROM news_items WHERE id = '{item.id}'"
            assert await replica.execute(behind) == 0
        finally:
            await replica.resume_replay()
        await taking_reads(services)  # caught up: back on the replica
        assert await in_recovery(services)
        assert item.id in await news_ids(services)


async def test_own_order_read_back_at_once_while_replay_is_paused(
    settings: Settings, replicated: ReplicatedPostgres
) -> None:
    """Read-your-writes: orders (and funds) stay on the primary, whatever the replica says."""
    replica = replica_of(replicated)
    own = own_settings(settings, replicated, max_lag=60.0)
    async with (
        open_services(own, replicated.url, own.redis_url or "") as services,
        running_api(own) as api,
    ):
        await taking_reads(services)
        sym = symbol("RR")
        await list_asset(services, sym, "20.00")
        token, _ = await trader(api, "1000")
        await replica.pause_replay()
        try:
            order = await placed(
                api, token, assetId=sym, orderType="BUY", orderSubType="LIMIT",
                quantity="2", price="10.00", timeInForce="GTC",
            )  # fmt: skip
            body = await api.gql(ORDERS, {"first": 10}, token)
            assert "errors" not in body, body
            ids = [e["node"]["id"] for e in body["data"]["orders"]["edges"]]
            assert order["id"] in ids  # found at once, from the primary
            assert services.replicas.replicas[0].available  # while the replica was fit
            replayed = await replica.execute(
                f"SELECT count(*) FROM orders WHERE id = '{order['id']}'"
            )
            assert replayed == 0  # and had not seen the order
        finally:
            await replica.resume_replay()


async def test_replica_stopped_reads_still_answer(
    settings: Settings, replicated: ReplicatedPostgres
) -> None:
    replica = replica_of(replicated)
    own = own_settings(settings, replicated, max_lag=60.0)
    async with open_services(own, replicated.url, own.redis_url or "") as services:
        await taking_reads(services)
        item = news_item("down")
        await services.news.ingest([item])
        await eventually(lambda: news_ids(services), lambda ids: item.id in ids)
        await _stop(replica)
        try:
            # At once (before any check noticed): the session finds the replica gone when
            # it connects and reads from the primary.
            assert item.id in await news_ids(services)
            page = await services.help_centre.search("password", locale="en")
            assert page is not None
            state = services.replicas.replicas[0]
            assert not state.available
            lines = await collect(own, replicated.url, own.redis_url or "")
            shown = [line for line in lines if line.component == f"replica {state.name}"]
            assert len(shown) == 1, lines
            assert not shown[0].ok, lines
            assert not shown[0].required, lines
            assert "unreachable" in shown[0].detail
        finally:
            await _start(replica)
        await taking_reads(services)
        assert await in_recovery(services)


async def _stop(replica: StreamingReplica) -> None:
    await asyncio.to_thread(replica.stop)


async def _start(replica: StreamingReplica) -> None:
    await asyncio.to_thread(replica.start)
