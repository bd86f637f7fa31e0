"""The market-data feed and the price-alert evaluator through Redis faults (issue 20): each
resumes by itself, nothing restarted but Redis.

What a user sees: after Redis was unreachable for a few seconds, and after it restarted
empty, a new quote arrives (``marketPrice`` moves on) and an alert set before the outage fires
on a price after it. After the empty restart the evaluator's index is rebuilt from PostgreSQL,
never assumed: an alert whose change notice was lost with Redis (written to PostgreSQL while
Redis was gone) fires too.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bourse.settings import Settings
from models.notifications import AlertCondition, AlertStatus, PriceAlert
from models.quotes import read_quotes
from models.services import Services, open_services
from tests.notifications.conftest import customer, tick
from tests.notifications.helpers import ALERTS, CREATE_ALERT, alert_input
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset
from tests.support.faults import wait_ready
from tests.support.polling import eventually
from tests.support.private_servers import PrivateRedis
from tests.support.server import Api
from tests.support.stack import Stack

READY_BOUND_S = 20.0  # /readyz 200 again within this long of Redis being back
RESUME_BOUND_S = 30.0  # a new quote, a fired alert, within this long of /readyz 200
MARKET_PRICE = "query($id: String!) { marketPrice(assetId: $id) { assetId price timestamp } }"


@dataclass
class FeedPlatform:
    stack: Stack
    services: Services
    redis: PrivateRedis


@pytest.fixture(scope="module")
async def platform(settings: Settings, private_redis: PrivateRedis) -> AsyncIterator[FeedPlatform]:
    own = settings.model_copy(update={"redis_url": private_redis.url})
    stack = Stack(own, liquidity=False, feed=True)
    stack.env["BOURSE_MARKETDATA_ASSETS_REFRESH_SECONDS"] = "1"  # new listings at once
    try:
        await stack.start_all()
        s = stack.settings
        assert s.database_url
        async with open_services(s, s.database_url, private_redis.url, pool_size=4) as services:
            yield FeedPlatform(stack, services, private_redis)
    finally:
        await stack.stop_all()


async def _quote_time(api: Api, sym: str) -> datetime | None:
    body = await api.gql(MARKET_PRICE, {"id": sym})
    quote = (body.get("data") or {}).get("marketPrice")
    return None if quote is None else datetime.fromisoformat(quote["timestamp"])


async def _a_quote_after(api: Api, sym: str, moment: datetime) -> None:
    await eventually(
        lambda: _quote_time(api, sym),
        lambda at: at is not None and at > moment,
        timeout=RESUME_BOUND_S,
        interval=0.5,
        what=f"a quote of {sym} after {moment.isoformat()}",
    )


async def _alert(api: Api, token: str, sym: str, condition: str, threshold: str) -> str:
    body = await api.gql(CREATE_ALERT, alert_input(sym, condition, threshold), token=token)
    payload: dict[str, Any] = body["data"]["createPriceAlert"]
    assert payload["errors"] == [], payload
    alert_id: str = payload["alert"]["id"]
    return alert_id


async def _fires(
    p: FeedPlatform, api: Api, token: str, sym: str, price: str, ids: set[str]
) -> None:
    """Send the price (as the feed does: quote key + PUBLISH) until the alerts show TRIGGERED:
    the evaluator hears only what is published while it is subscribed."""

    async def triggered() -> set[str]:
        await tick(p.services, sym, price)
        body = await api.gql(ALERTS, {"status": "TRIGGERED"}, token=token)
        return {a["id"] for a in body["data"]["priceAlerts"]}

    await eventually(
        triggered,
        lambda got: ids <= got,
        timeout=RESUME_BOUND_S,
        interval=0.5,
        what=f"alerts {sorted(ids)} fired",
    )


async def test_feed_and_alerts_resume_after_redis_unreachable(platform: FeedPlatform) -> None:
    p = platform
    sym = symbol("FU")
    await list_asset(p.services, sym, "100.00")
    async with p.stack.client() as api:
        await _a_quote_after(api, sym, datetime.now(UTC))  # the feed prices it
        token, _, _ = await customer(api)
        alert = await _alert(api, token, sym, "PRICE_ABOVE", "180")

        p.redis.pause()
        try:
            await asyncio.sleep(5.0)
        finally:
            p.redis.resume()
        back = datetime.now(UTC)
        ready_after = await wait_ready(api, READY_BOUND_S)
        print(f"redis unreachable 5 s: /readyz 200 {ready_after:.1f}s after Redis was back")

        await _a_quote_after(api, sym, back)
        await _fires(p, api, token, sym, "181", {alert})


async def test_feed_and_alerts_resume_after_redis_restarted_empty(
    platform: FeedPlatform,
) -> None:
    p = platform
    sym = symbol("FE")
    await list_asset(p.services, sym, "100.00")
    async with p.stack.client() as api:
        await _a_quote_after(api, sym, datetime.now(UTC))
        token, user_id, _ = await customer(api)
        before = await _alert(api, token, sym, "PRICE_BELOW", "20")

        await p.redis.shutdown_nosave()
        shutil.rmtree(p.redis.dir / "appendonlydir", ignore_errors=True)  # restarted EMPTY
        # Written while Redis is gone: its change notice never reached the evaluator.
        lost = uuid.uuid4()
        async with p.services.sessionmaker.begin() as s:
            s.add(
                PriceAlert(
                    id=lost,
                    user_id=user_id,
                    asset_id=sym,
                    condition=AlertCondition.PRICE_BELOW,
                    threshold=Decimal("25"),
                    status=AlertStatus.ACTIVE,
                    armed_at=datetime.now(UTC),
                )
            )
        await asyncio.sleep(1.0)
        await p.redis.start()
        back = datetime.now(UTC)
        ready_after = await wait_ready(api, READY_BOUND_S)
        print(f"redis restarted empty: /readyz 200 {ready_after:.1f}s after Redis was back")

        await _a_quote_after(api, sym, back)
        quotes = await read_quotes(p.services.redis, p.stack.prefix, [sym])
        assert sym in quotes, "the feed wrote no quote into the new Redis"
        await _fires(p, api, token, sym, "19", {before, str(lost)})
