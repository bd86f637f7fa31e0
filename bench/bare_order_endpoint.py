"""The baseline for `orders_http.py`: placeOrder without GraphQL. A plain Starlette route
(JSON in, JSON out) that authenticates the bearer token (with the API's per-process token
cache and its revocations feed) and calls `OrderBook.place` (the same
validation, the same PostgreSQL transaction, the same XADD to the shard and outbox update as
the GraphQL mutation), served by uvicorn exactly as `python -m bff.serve` serves the API
(uvloop + httptools, no access log middleware, one process).

    DATABASE_URL=... REDIS_URL=... PORT=... python bench/bare_order_endpoint.py

    POST /orders  {"assetId", "orderType", "orderSubType", "quantity"?, "notional"?, "price"?,
                   "stopPrice"?, "timeInForce"?, "clientOrderId"?}   (Authorization: Bearer)
    → 200 {"order": {"id", "status", ...} | null, "errors": [{"field", "code", "message"}]}
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from bff.health import readyz  # noqa: E402
from bff.revocations import revocations  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.settings import Settings, get_settings  # noqa: E402
from models.errors import DomainError  # noqa: E402
from models.orders import (  # noqa: E402
    Order,
    OrderSubType,
    PlaceOrderRequest,
    Side,
    TimeInForce,
)
from models.services import Services, open_services  # noqa: E402
from resolvers.context import bearer  # noqa: E402
from resolvers.hub import Hub  # noqa: E402


def _d(v: Any) -> str | None:
    return None if v is None else str(v.normalize())


def order_json(o: Order) -> dict[str, Any]:
    """The fields the benchmark's GraphQL selection asks for, in the same shapes."""
    return {
        "id": str(o.id),
        "status": str(o.status),
        "orderType": str(o.side),
        "orderSubType": str(o.sub_type),
        "quantity": _d(o.quantity),
        "price": _d(o.price),
        "timeInForce": str(o.time_in_force),
        "createdAt": o.created_at.isoformat(),
    }


async def place_order(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    token = bearer(request.headers.get("authorization"))
    principal = await services.accounts.authenticate(token) if token else None
    if principal is None:
        return JSONResponse({"order": None, "errors": [{"code": "UNAUTHENTICATED"}]}, 401)
    try:
        body = await request.json()
        req = PlaceOrderRequest(
            asset_id=str(body["assetId"]),
            side=Side(body["orderType"]),
            sub_type=OrderSubType(body["orderSubType"]),
            time_in_force=TimeInForce(body.get("timeInForce") or "GTC"),
            quantity=body.get("quantity"),
            notional=body.get("notional"),
            price=body.get("price"),
            stop_price=body.get("stopPrice"),
            client_order_id=body.get("clientOrderId"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse(
            {"order": None, "errors": [{"code": "BAD_REQUEST", "message": str(exc)}]}
        )
    try:
        order = await services.orders.place(principal.user_id, req)
    except DomainError as exc:
        errors = [
            {"field": p.field, "code": str(p.code), "message": p.message} for p in exc.problems
        ]
        return JSONResponse({"order": None, "errors": errors})
    return JSONResponse({"order": order_json(order), "errors": []})


def create_app(settings: Settings, database_url: str, redis_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, database_url, redis_url) as services:
            app.state.services = services
            # The same token cache as the API (bff.app): fed by the revocations channel.
            hub = Hub(redis_url, name=f"{settings.redis_prefix}bare-hub")
            await hub.start()
            try:
                async with revocations(hub, services.accounts.sessions, settings.redis_prefix):
                    yield
            finally:
                await hub.close()

    return Starlette(
        routes=[Route("/readyz", readyz), Route("/orders", place_order, methods=["POST"])],
        lifespan=lifespan,
    )


def main() -> int:
    settings = get_settings()
    if not settings.database_url or not settings.redis_url:
        print("DATABASE_URL and REDIS_URL are required", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    app = create_app(settings, settings.database_url, settings.redis_url)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
