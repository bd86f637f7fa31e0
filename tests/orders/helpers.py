"""GraphQL documents and helpers for trading tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from models.assets import AssetClass, NewAsset
from models.ledger import AccountKind
from models.orders import FINAL_STATUSES, Order
from models.services import Services
from tests.accounts.helpers import new_user
from tests.funds.helpers import deposit
from tests.support.polling import eventually
from tests.support.server import Api

ORDER_FIELDS = """id assetId orderType orderSubType quantity notional price stopPrice timeInForce
  status filledQuantity remainingQuantity averagePrice clientOrderId rejectReason cancelReason
  createdAt updatedAt executedAt fills { id quantity price timestamp }"""
PLACE = f"""mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{
  order {{ {ORDER_FIELDS} }} errors {{ field code message }} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ cancelOrder(id: $id) {{
  order {{ {ORDER_FIELDS} }} errors {{ field code message }} }} }}"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
ORDERS = f"""query($status: OrderStatus, $assetId: String, $first: Int, $after: String) {{
  orders(status: $status, assetId: $assetId, first: $first, after: $after) {{
  edges {{ cursor node {{ {ORDER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
UPDATES = f"""subscription($after: String) {{ orderUpdates(after: $after) {{ event cursor
  order {{ {ORDER_FIELDS} }} fill {{ id quantity price timestamp }} }} }}"""
ACCOUNT = "{ account { cash { currency total available held } buyingPower } }"
FINAL = {"EXECUTED", "CANCELLED", "REJECTED", "EXPIRED"}


async def trader(api: Api, cash: str | None = None) -> tuple[str, uuid.UUID]:
    """A signed-in user (token, user id), with ``cash`` USD deposited."""
    _, _, login = await new_user(api, "t")
    token: str = login["token"]
    me = await api.gql("{ me { id } }", token=token)
    if cash is not None:
        assert (await deposit(api, token, cash))["errors"] == []
    return token, uuid.UUID(me["data"]["me"]["id"])


async def list_asset(
    services: Services,
    symbol: str,
    price: str,
    *,
    liquidity: bool = False,
    fractionable: bool = True,
    tradable: bool = True,
) -> None:
    await services.assets.upsert_many(
        [
            NewAsset(
                symbol=symbol,
                name=f"Test {symbol}",
                asset_class=AssetClass.EQUITY,
                currency="USD",
                tick_size="0.01",
                fractionable=fractionable,
                tradable=tradable,
                reference_price=price,
                market_calendar="24x7",
            )
        ]
    )
    if liquidity:
        await services.liquidity.configure([symbol])


async def grant_shares(services: Services, user_id: uuid.UUID, symbol: str, qty: str) -> None:
    """Give a user shares the way a broker-to-broker transfer does (recordTransferIn)."""
    from models.transfers import TransferRequest

    await services.transfers.record(
        TransferRequest(str(user_id), symbol, qty, cost_basis=str(Decimal(qty) * 10))
    )


async def shares(services: Services, user_id: uuid.UUID, symbol: str) -> tuple[Decimal, Decimal]:
    """(total, held) of a user's shares."""
    async with services.sessionmaker() as s:
        for b in await services.ledger.balances(s, user_id, AccountKind.SHARES):
            if b.asset == symbol:
                return b.total, b.held
    return Decimal(0), Decimal(0)


async def cash(api: Api, token: str) -> dict[str, Decimal]:
    body = await api.gql(ACCOUNT, token=token)
    usd = next(c for c in body["data"]["account"]["cash"] if c["currency"] == "USD")
    return {k: Decimal(usd[k]) for k in ("total", "available", "held")}


async def place(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = await api.gql(PLACE, {"input": fields}, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["placeOrder"]
    return result


async def placed(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    result = await place(api, token, **fields)
    assert result["errors"] == [], result
    order: dict[str, Any] = result["order"]
    return order


async def get_order(api: Api, token: str, order_id: str) -> dict[str, Any] | None:
    body = await api.gql(ORDER, {"id": order_id}, token)
    assert "errors" not in body, body
    found: dict[str, Any] | None = body["data"]["order"]
    return found


async def wait_order(
    api: Api, token: str, order_id: str, statuses: set[str], timeout: float = 15
) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        order = await get_order(api, token, order_id)
        assert order is not None
        return order

    return await eventually(
        fetch, lambda o: o["status"] in statuses, timeout=timeout, what=f"order {statuses}"
    )


async def wait_book(services: Services, symbol: str, timeout: float = 15) -> dict[str, Any]:
    """The asset's book once the liquidity provider has quoted both sides."""
    book = await eventually(
        lambda: services.exchange.book(symbol),
        lambda b: bool(b and b.get("bids") and b.get("asks")),
        timeout=timeout,
        what=f"a two-sided book for {symbol}",
    )
    assert book is not None
    return book


@asynccontextmanager
async def order_updates(
    api: Api, token: str, after: str | None = None
) -> AsyncIterator[ClientConnection]:
    """An ``orderUpdates`` subscription; every event from the moment it is sent (no need to
    wait before placing orders), or after ``after``."""
    async with api.ws({"Authorization": f"Bearer {token}"}) as conn:
        payload = {"query": UPDATES, "variables": {"after": after}}
        await conn.send(json.dumps({"id": "u", "type": "subscribe", "payload": payload}))
        yield conn


async def next_update(conn: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if msg.get("type") == "next":
            assert "errors" not in msg["payload"], msg
            update: dict[str, Any] = msg["payload"]["data"]["orderUpdates"]
            return update
        if msg.get("type") in ("error", "complete"):
            raise AssertionError(f"subscription ended: {msg}")


async def updates_until(
    conn: ClientConnection, order_id: str, events: set[str], timeout: float = 10
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        update = await next_update(conn, timeout)
        seen.append(update)
        if update["order"]["id"] == order_id and update["event"] in events:
            return seen


async def admin_token(api: Api, services: Services) -> str:
    from models.users import Role
    from tests.accounts.helpers import PASSWORD, login, unique

    username, email = unique("adm")
    await services.accounts.register(username, email, PASSWORD, role=Role.ADMIN)
    signed_in = await login(api, email)
    token: str = signed_in["token"]
    return token


async def cancel_open_orders(api: Api, services: Services, tokens: dict[uuid.UUID, str]) -> None:
    """Cancel every open order of these users (user id -> token), each through the API."""
    async with services.sessionmaker() as s:
        open_orders = (
            await s.execute(
                select(Order.id, Order.user_id).where(
                    Order.user_id.in_(list(tokens)), Order.status.not_in(FINAL_STATUSES)
                )
            )
        ).all()
    for order_id, user_id in open_orders:
        body = await api.gql(CANCEL, {"id": str(order_id)}, tokens[user_id])
        assert "errors" not in body, body
