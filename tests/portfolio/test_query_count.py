"""A 200-holding portfolio costs as many database statements and Redis commands as a 10-holding
one (dataloaders: holdings, assets, quotes, FX, base currency, cash: one round trip each).

Counted honestly on the server's own clients: a SQLAlchemy `before_cursor_execute` listener on
the API's engine, and a wrapper around the API's Redis client's `execute_command`. The app is
served by a real uvicorn in this process, and the test's own setup uses separate clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event

from bff.app import create_app
from bourse.process import ApiServer
from bourse.settings import Settings
from models.services import Services
from tests.portfolio.conftest import MakeAssets, customer, fill, set_price
from tests.portfolio.helpers import PORTFOLIO, PORTFOLIOS
from tests.support.server import Api, free_port

QUERY = PORTFOLIO.replace("assets {", "assets { asset { name } ")


class Counter:
    def __init__(self, services: Services) -> None:
        self.sql: list[str] = []
        self.redis: list[str] = []
        engine = services.engine.sync_engine

        def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            self.sql.append(statement)

        event.listen(engine, "before_cursor_execute", on_execute)
        original: Callable[..., Awaitable[Any]] = services.redis.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.redis.append(str(args[0]))
            return await original(*args, **options)

        services.redis.execute_command = counted  # type: ignore[method-assign]

    def reset(self) -> None:
        self.sql.clear()
        self.redis.clear()


@asynccontextmanager
async def counted_api(settings: Settings) -> AsyncIterator[tuple[Api, Counter]]:
    assert settings.database_url
    assert settings.redis_url
    app = create_app(settings, settings.database_url, settings.redis_url)
    port = free_port()
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        counter = Counter(app.state.services)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            yield Api(base, http), counter
    finally:
        server.should_exit = True
        await task


async def test_portfolio_round_trips_do_not_grow_with_holdings(
    settings: Settings, services: Services, make_assets: MakeAssets
) -> None:
    async with counted_api(settings) as (api, counter):
        measured: dict[int, tuple[int, list[str]]] = {}
        for n in (10, 200):
            token, user = await customer(api)
            symbols = await make_assets(n, price="10")
            await set_price(services, symbols[: n // 2], "11")  # half live, half reference
            now = datetime.now(UTC)
            for i, sym in enumerate(symbols):
                await fill(services, user, sym, "BUY", "2", "10", now, fill_id=f"q{n}-{i}")
            await api.gql(PORTFOLIOS, token=token)  # warm: creates the default portfolio
            counter.reset()
            body = await api.gql(QUERY, token=token)
            assert "errors" not in body, body
            assets = body["data"]["portfolio"]["assets"]
            assert len(assets) == n
            assert all(a["asset"]["name"].startswith("Test ") for a in assets)
            assert (
                body["data"]["portfolio"]["totalValue"] == f"{(n // 2) * 22 + (n - n // 2) * 20}.00"
            )
            measured[n] = (len(counter.sql), sorted(counter.redis))
        sql_10, redis_10 = measured[10]
        sql_200, redis_200 = measured[200]
        assert sql_200 == sql_10, measured
        assert redis_200 == redis_10 == ["HGETALL", "MGET"], measured
        # auth (session lookup), the portfolio, holdings, assets, base currency, cash
        assert sql_200 <= 7, counter.sql
