"""The REST facade with the seed's shapes, on the whole platform (API, shard, settlement as
processes): register -> login -> deposit -> place order -> order status -> cancel; problem
details with the GraphQL codes; Idempotency-Key; `{userId}` is the caller's own; a key
without TRADE cannot place orders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bourse.settings import Settings
from models.services import open_services
from tests.accounts.helpers import verify_identity
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset
from tests.partners.helpers import create_key
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack, running_stack

PASSWORD = "Sturdy-Pass-42"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    # One shard, no liquidity provider: orders here rest until cancelled.
    async with running_stack(settings, shards=1, liquidity=False) as running:
        yield running


@pytest.fixture(scope="module")
async def asset(stack: Stack) -> str:
    s = stack.settings
    assert s.database_url
    assert s.redis_url
    found = symbol("RS")
    async with open_services(s, s.database_url, s.redis_url, pool_size=1) as services:
        await list_asset(services, found, "100")
    return found


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:bourse:error:{code}"
    assert body["title"]
    assert body["detail"]
    return body


async def signed_up(http: httpx.AsyncClient, tag: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    body = {"username": f"{tag}{suffix}", "email": f"{tag}.{suffix}@example.com",
            "password": PASSWORD}  # fmt: skip
    registered = await http.post("/api/users/register", json=body)
    assert registered.status_code == 201, registered.text
    assert registered.json()["message"] == "User registered successfully"
    user_id = registered.json()["userId"]
    login = await http.post("/api/users/login", json={"email": body["email"],
                                                        "password": PASSWORD})  # fmt: skip
    assert login.status_code == 200, login.text
    assert set(login.json()) == {"token", "userId"}
    assert login.json()["userId"] == user_id
    token = str(login.json()["token"])
    # The seed's REST API has no identity step: a customer verifies in the app (GraphQL)
    # before trading, as the web client's onboarding does.
    await verify_identity(Api(str(http.base_url).rstrip("/"), http), token)
    return user_id, token


async def test_register_login_deposit_order_status_cancel(
    http: httpx.AsyncClient, asset: str
) -> None:
    user_id, token = await signed_up(http, "rest")
    profile = await http.get("/api/users/profile", headers=auth(token))
    assert profile.status_code == 200
    assert set(profile.json()) == {"userId", "username", "email", "createdAt"}
    assert profile.json()["userId"] == user_id

    deposit = {"userId": user_id, "amount": "1000.00", "currency": "USD",
               "paymentMethod": "bank_transfer"}  # fmt: skip
    headers = {**auth(token), "Idempotency-Key": uuid.uuid4().hex}
    booked = await http.post("/api/transactions/deposit", json=deposit, headers=headers)
    assert booked.status_code == 201, booked.text
    assert set(booked.json()) == {"transactionId", "status"}
    assert booked.json()["status"] in {"PENDING", "COMPLETED"}
    # The same key again: the same transaction, not a second deposit.
    again = await http.post("/api/transactions/deposit", json=deposit, headers=headers)
    assert again.json()["transactionId"] == booked.json()["transactionId"]
    history = await http.get(f"/api/transactions/history/{user_id}", headers=auth(token))
    assert [t["transactionId"] for t in history.json()["transactions"]] == [
        booked.json()["transactionId"]
    ]
    assert history.json()["transactions"][0]["amount"] == "1000.00"

    order = {"userId": user_id, "assetId": asset, "orderType": "BUY", "quantity": "2",
             "price": "90", "orderSubType": "LIMIT"}  # fmt: skip
    key = {**auth(token), "Idempotency-Key": uuid.uuid4().hex}
    placed = await http.post("/api/orders", json=order, headers=key)
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "PENDING"
    order_id = placed.json()["orderId"]
    retried = await http.post("/api/orders", json=order, headers=key)
    assert (retried.status_code, retried.json()["orderId"]) == (200, order_id)

    status = await http.get(f"/api/orders/{order_id}", headers=auth(token))
    assert status.json() == {"orderId": order_id, "status": "PENDING", "filledQuantity": "0",
                             "remainingQuantity": "2"}  # fmt: skip
    listed = await http.get(f"/api/orders/user/{user_id}", headers=auth(token))
    assert [o["orderId"] for o in listed.json()["orders"]] == [order_id]
    assert listed.json()["orders"][0]["price"] == "90"

    cancelled = await http.delete(f"/api/orders/{order_id}", headers=auth(token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"message": "Order cancelled successfully"}

    async def final() -> bool:
        found = await http.get(f"/api/orders/{order_id}", headers=auth(token))
        return bool(found.json()["status"] == "CANCELLED")

    await eventually(final)
    problem(await http.delete(f"/api/orders/{order_id}", headers=auth(token)), 409,
            "NOT_CANCELLABLE")  # fmt: skip
    portfolio = await http.get(f"/api/portfolio/{user_id}", headers=auth(token))
    assert portfolio.status_code == 200
    assert portfolio.json()["assets"] == []
    assert portfolio.json()["totalValue"] == "1000.00"


async def test_problems_carry_the_graphql_codes(http: httpx.AsyncClient, asset: str) -> None:
    _, token = await signed_up(http, "rp")
    problem(await http.get("/api/users/profile"), 401, "UNAUTHENTICATED")
    bad = await http.post("/api/users/login", json={"email": "nobody@example.com",
                                                     "password": "wrong-password"})  # fmt: skip
    problem(bad, 401, "INVALID_CREDENTIALS")
    body = problem(await http.post("/api/users/register", json={"username": "x"}), 400,
                   "INVALID_INPUT")  # fmt: skip
    assert {e["field"] for e in body["errors"]} >= {"email", "password"}
    poor = {"assetId": asset, "orderType": "BUY", "quantity": "5", "price": "90",
            "orderSubType": "LIMIT"}  # fmt: skip
    problem(await http.post("/api/orders", json=poor, headers=auth(token)), 422,
            "INSUFFICIENT_BUYING_POWER")  # fmt: skip
    nodeposit = await http.post(
        "/api/transactions/deposit",
        json={"amount": "10", "currency": "USD", "paymentMethod": "bank"},
        headers=auth(token),
    )
    problem(nodeposit, 400, "INVALID_INPUT")  # Idempotency-Key is required
    problem(await http.get("/api/market/price/NOSUCH"), 404, "NOT_FOUND")
    price = await http.get(f"/api/market/price/{asset}")
    assert price.status_code == 200
    assert set(price.json()) == {"assetId", "price", "timestamp"}


async def test_user_ids_must_be_the_callers_own(http: httpx.AsyncClient) -> None:
    alice, alice_token = await signed_up(http, "ra")
    bob, _ = await signed_up(http, "rb")
    for path in (f"/api/portfolio/{bob}", f"/api/orders/user/{bob}",
                 f"/api/transactions/history/{bob}", "/api/portfolio/not-a-uuid"):  # fmt: skip
        problem(await http.get(path, headers=auth(alice_token)), 404, "NOT_FOUND")
    deposit = {"userId": bob, "amount": "10", "currency": "USD", "paymentMethod": "bank"}
    headers = {**auth(alice_token), "Idempotency-Key": uuid.uuid4().hex}
    problem(await http.post("/api/transactions/deposit", json=deposit, headers=headers), 404,
            "NOT_FOUND")  # fmt: skip
    assert (await http.get(f"/api/portfolio/{alice}", headers=auth(alice_token))).status_code == 200


async def test_a_key_without_trade_cannot_place_orders(
    stack: Stack, http: httpx.AsyncClient, asset: str
) -> None:
    _, token = await signed_up(http, "rk")
    async with stack.client() as api:
        reader = (await create_key(api, token, ["READ_ACCOUNT", "FUNDS"]))["secret"]
        trader = (await create_key(api, token, ["TRADE"]))["secret"]
    deposit = {"amount": "500", "currency": "USD", "paymentMethod": "bank"}
    keyed = {**auth(reader), "Idempotency-Key": uuid.uuid4().hex}
    funded = await http.post("/api/transactions/deposit", json=deposit, headers=keyed)
    assert funded.status_code == 201, funded.text
    order = {"assetId": asset, "orderType": "BUY", "quantity": "1", "price": "90",
             "orderSubType": "LIMIT"}  # fmt: skip
    problem(await http.post("/api/orders", json=order, headers=auth(reader)), 403, "FORBIDDEN")
    placed = await http.post("/api/orders", json=order, headers=auth(trader))
    assert placed.status_code == 201, placed.text
    # TRADE alone does not read the account.
    problem(await http.get("/api/users/profile", headers=auth(trader)), 403, "FORBIDDEN")


async def test_openapi_31_and_docs_are_served(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": "/api"}]
    for path in ("/users/register", "/users/login", "/users/profile", "/portfolio/{userId}",
                 "/orders", "/orders/{orderId}", "/market/price/{assetId}",
                 "/market/history/{assetId}", "/market/summary", "/transactions/deposit",
                 "/transactions/withdraw", "/transactions/history/{userId}"):  # fmt: skip
        assert path in spec["paths"], path
    docs = await http.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/api/openapi.json" in docs.text
    bundle = await http.get("/api/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200


async def test_tracked_portfolio_assets_are_added_and_removed(
    stack: Stack, http: httpx.AsyncClient, asset: str
) -> None:
    user_id, token = await signed_up(http, "rt")
    async with stack.client() as api:
        created = await api.gql(
            'mutation { createPortfolio(input: {name: "Ideas"})'
            " { portfolio { id } errors { code } } }",
            token=token,
        )
    portfolio_id = created["data"]["createPortfolio"]["portfolio"]["id"]
    body = {"assetId": asset, "quantity": "3", "purchasePrice": "95.50"}
    base = f"/api/portfolio/{user_id}/assets"
    problem(await http.post(base, json=body, headers=auth(token)), 422, "NOT_ALLOWED")
    added = await http.post(base, json={**body, "portfolioId": portfolio_id}, headers=auth(token))
    assert (added.status_code, added.json()) == (201, {"message": "Asset added successfully"})
    async with stack.client() as api:
        held = await api.gql(
            "query($id: ID) { portfolio(id: $id) { assets { assetId quantity } } }",
            {"id": portfolio_id}, token,
        )  # fmt: skip
    assert held["data"]["portfolio"]["assets"] == [{"assetId": asset, "quantity": "3"}], held
    path = f"{base}/{asset}?portfolioId={portfolio_id}"
    removed = await http.delete(path, headers=auth(token))
    assert (removed.status_code, removed.json()) == (200, {"message": "Asset removed successfully"})
    problem(await http.delete(path, headers=auth(token)), 404, "NOT_FOUND")
