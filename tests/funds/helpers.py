"""GraphQL documents and small helpers for the funds tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from tests.accounts.helpers import new_user
from tests.support.polling import eventually
from tests.support.server import Api

TXN_FIELDS = "id type amount currency status paymentMethod withdrawalMethod createdAt"
DEPOSIT = f"""mutation($input: DepositInput!) {{ deposit(input: $input) {{
  transaction {{ {TXN_FIELDS} }} errors {{ field code message }} }} }}"""
WITHDRAW = f"""mutation($input: WithdrawInput!) {{ withdraw(input: $input) {{
  transaction {{ {TXN_FIELDS} }} errors {{ field code message }} }} }}"""
ACCOUNT = "{ account { cash { currency total available held } buyingPower } }"
TRANSACTIONS = f"""query($type: TransactionType, $startDate: Date, $endDate: Date, $first: Int,
  $after: String) {{ transactions(type: $type, startDate: $startDate, endDate: $endDate,
  first: $first, after: $after) {{ edges {{ cursor node {{ {TXN_FIELDS} }} }}
  pageInfo {{ hasNextPage endCursor }} }} }}"""


def key() -> str:
    return uuid.uuid4().hex


async def signed_in(api: Api) -> str:
    _, _, login = await new_user(api, "f")
    token: str = login["token"]
    return token


async def deposit(
    api: Api,
    token: str,
    amount: Any,
    currency: str = "USD",
    idempotency_key: str | None = None,
    method: str = "sandbox:bank",
) -> dict[str, Any]:
    body = await api.gql(
        DEPOSIT,
        {"input": {"amount": amount, "currency": currency, "paymentMethod": method,
                   "idempotencyKey": idempotency_key or key()}},
        token,
    )  # fmt: skip
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["deposit"]
    return payload


async def withdraw(
    api: Api,
    token: str,
    amount: Any,
    currency: str = "USD",
    idempotency_key: str | None = None,
    method: str = "sandbox:bank",
) -> dict[str, Any]:
    body = await api.gql(
        WITHDRAW,
        {"input": {"amount": amount, "currency": currency, "withdrawalMethod": method,
                   "idempotencyKey": idempotency_key or key()}},
        token,
    )  # fmt: skip
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["withdraw"]
    return payload


async def account(api: Api, token: str) -> dict[str, Any]:
    body = await api.gql(ACCOUNT, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["account"]
    return result


async def cash(api: Api, token: str, currency: str = "USD") -> dict[str, Decimal]:
    for row in (await account(api, token))["cash"]:
        if row["currency"] == currency:
            return {k: Decimal(row[k]) for k in ("total", "available", "held")}
    return {"total": Decimal(0), "available": Decimal(0), "held": Decimal(0)}


async def transactions(api: Api, token: str, **variables: Any) -> dict[str, Any]:
    body = await api.gql(TRANSACTIONS, variables, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["transactions"]
    return result


async def wait_settled(api: Api, token: str, ids: set[str], timeout: float = 20) -> dict[str, str]:
    """Poll the history until none of `ids` is PENDING; returns id → status."""

    async def statuses() -> dict[str, str]:
        page = await transactions(api, token, first=100)
        return {e["node"]["id"]: e["node"]["status"] for e in page["edges"]}

    status = await eventually(
        statuses,
        lambda seen: all(seen.get(i) not in (None, "PENDING") for i in ids),
        timeout=timeout,
        interval=0.2,
        what="every transaction settled",
    )
    return {i: status[i] for i in ids}
