"""Deposits, withdrawals, the account and the history, through the real GraphQL endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.accounts.helpers import codes, error_code
from tests.funds.helpers import (
    ACCOUNT,
    DEPOSIT,
    account,
    cash,
    deposit,
    key,
    signed_in,
    transactions,
    wait_settled,
    withdraw,
)
from tests.support.server import Api


async def test_deposit_completes_and_shows_in_the_account(api: Api) -> None:
    token = await signed_in(api)
    before = await account(api, token)
    assert before == {
        "cash": [{"currency": "USD", "total": "0.00", "available": "0.00", "held": "0.00"}],
        "buyingPower": "0.00",
    }
    result = await deposit(api, token, "100.5")
    assert result["errors"] == []
    txn = result["transaction"]
    assert txn["type"] == "DEPOSIT"
    assert txn["status"] == "COMPLETED"
    assert txn["amount"] == "100.50"
    assert txn["currency"] == "USD"
    assert txn["paymentMethod"] == "sandbox:bank"
    assert txn["withdrawalMethod"] is None
    after = await account(api, token)
    assert after["cash"] == [
        {"currency": "USD", "total": "100.50", "available": "100.50", "held": "0.00"}
    ]
    assert after["buyingPower"] == "100.50"


async def test_funds_need_sign_in(api: Api) -> None:
    body = await api.gql(ACCOUNT)
    assert error_code(body) == "UNAUTHENTICATED"
    body = await api.gql(
        DEPOSIT,
        {"input": {"amount": "1", "currency": "USD", "paymentMethod": "x", "idempotencyKey": "k"}},
    )
    assert error_code(body) == "UNAUTHENTICATED"


BAD_AMOUNTS: list[Any] = [
    "-5", "0", "0.00", "NaN", "nan", "Infinity", "-Infinity", "sNaN", "10.001", "0.001", "1e999",
    "1e-999", "99999999999999999999", "abc", "", "   ", "1,000", "1_000", "10 USD", "0x10",
    "1" * 100, "\u0661\u0660", -5, 0, 1e308, 10.001, True,
]  # fmt: skip


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_bad_amounts_are_errors_and_move_nothing(api: Api, amount: Any) -> None:
    token = await signed_in(api)
    await deposit(api, token, "50")
    result = await deposit(api, token, amount)
    assert result["transaction"] is None
    assert codes(result) == ["INVALID_AMOUNT"], result
    assert result["errors"][0]["field"] == "amount"
    result = await withdraw(api, token, amount)
    assert codes(result) == ["INVALID_AMOUNT"], result
    assert await cash(api, token) == {"total": 50, "available": 50, "held": 0}
    assert len((await transactions(api, token))["edges"]) == 1


@pytest.mark.parametrize("literal", ['"abc"', "true", "{a: 1}", "[1]", "null", "-1", "1.5e3"])
async def test_amount_literals_in_the_document(api: Api, literal: str) -> None:
    token = await signed_in(api)
    body = await api.gql(
        f"""mutation {{ deposit(input: {{amount: {literal}, currency: "USD",
        paymentMethod: "card", idempotencyKey: "{key()}"}}) {{ transaction {{ amount }}
        errors {{ code }} }} }}""",
        token=token,
    )
    if literal == "null":  # a required input left null is a validation error of the document
        assert "data" not in body or body["data"] is None
        return
    assert "errors" not in body, body
    payload = body["data"]["deposit"]
    if literal == "1.5e3":
        assert payload == {"transaction": {"amount": "1500.00"}, "errors": []}
    else:
        assert [e["code"] for e in payload["errors"]] == ["INVALID_AMOUNT"]


async def test_unknown_currency_and_several_problems_at_once(api: Api) -> None:
    token = await signed_in(api)
    result = await deposit(api, token, "10", currency="XYZ")
    assert codes(result) == ["UNSUPPORTED_CURRENCY"]
    assert result["errors"][0]["field"] == "currency"
    result = await deposit(api, token, "abc", currency="", idempotency_key=" ", method="")
    assert sorted(codes(result)) == [
        "INVALID_AMOUNT", "INVALID_INPUT", "INVALID_INPUT", "UNSUPPORTED_CURRENCY",
    ]  # fmt: skip
    assert (await transactions(api, token))["edges"] == []


async def test_multi_currency_cash(api: Api) -> None:
    token = await signed_in(api)
    for amount, currency in (("10", "EUR"), ("20.25", "GBP"), ("5", "USD"), ("700", "JPY")):
        assert (await deposit(api, token, amount, currency))["errors"] == []
    assert codes(await deposit(api, token, "1.5", "JPY")) == ["INVALID_AMOUNT"]
    acct = await account(api, token)
    assert [(c["currency"], c["total"]) for c in acct["cash"]] == [
        ("EUR", "10.00"), ("GBP", "20.25"), ("JPY", "700"), ("USD", "5.00"),
    ]  # fmt: skip
    assert acct["buyingPower"] == "5.00"


async def test_withdrawal_holds_then_completes(api: Api) -> None:
    token = await signed_in(api)
    await deposit(api, token, "100")
    result = await withdraw(api, token, "30", method="sandbox:ach")
    assert result["errors"] == []
    txn = result["transaction"]
    assert (txn["type"], txn["status"], txn["withdrawalMethod"]) == (
        "WITHDRAWAL", "PENDING", "sandbox:ach",
    )  # fmt: skip
    assert await cash(api, token) == {"total": 100, "available": 70, "held": 30}
    assert (await account(api, token))["buyingPower"] == "70.00"
    assert await wait_settled(api, token, {txn["id"]}) == {txn["id"]: "COMPLETED"}
    assert await cash(api, token) == {"total": 70, "available": 70, "held": 0}


async def test_failed_withdrawal_gives_the_money_back(api: Api) -> None:
    token = await signed_in(api)
    await deposit(api, token, "100")
    txn = (await withdraw(api, token, "60", method="sandbox:fail"))["transaction"]
    assert txn["status"] == "PENDING"
    assert await cash(api, token) == {"total": 100, "available": 40, "held": 60}
    assert await wait_settled(api, token, {txn["id"]}) == {txn["id"]: "FAILED"}
    assert await cash(api, token) == {"total": 100, "available": 100, "held": 0}
    # and the money can be withdrawn again
    assert (await withdraw(api, token, "100"))["errors"] == []


async def test_failed_deposit_moves_nothing(api: Api) -> None:
    token = await signed_in(api)
    result = await deposit(api, token, "100", method="sandbox:fail")
    assert result["errors"] == []
    assert result["transaction"]["status"] == "FAILED"
    assert await cash(api, token) == {"total": 0, "available": 0, "held": 0}


async def test_insufficient_funds(api: Api) -> None:
    token = await signed_in(api)
    assert codes(await withdraw(api, token, "1")) == ["INSUFFICIENT_FUNDS"]
    await deposit(api, token, "10")
    assert codes(await withdraw(api, token, "10.01")) == ["INSUFFICIENT_FUNDS"]
    assert codes(await withdraw(api, token, "5", currency="EUR")) == ["INSUFFICIENT_FUNDS"]
    assert await cash(api, token) == {"total": 10, "available": 10, "held": 0}


async def test_idempotency_key_returns_the_first_transaction(api: Api) -> None:
    token = await signed_in(api)
    k = key()
    first = await deposit(api, token, "25", idempotency_key=k)
    again = await deposit(api, token, "25.00", idempotency_key=k)
    assert again["errors"] == []
    assert again["transaction"] == first["transaction"]
    other = await deposit(api, token, "26", idempotency_key=k)
    assert codes(other) == ["IDEMPOTENCY_KEY_REUSED"]
    assert codes(await withdraw(api, token, "25", idempotency_key=k)) == ["IDEMPOTENCY_KEY_REUSED"]
    assert (await cash(api, token))["total"] == 25
    # keys are per user: another user may use the same key
    token2 = await signed_in(api)
    assert (await deposit(api, token2, "1", idempotency_key=k))["errors"] == []


async def test_racing_duplicates_move_money_once(api: Api) -> None:
    token = await signed_in(api)
    k = key()
    results = await asyncio.gather(
        *(deposit(api, token, "40", idempotency_key=k) for _ in range(10))
    )
    assert {r["transaction"]["id"] for r in results} == {results[0]["transaction"]["id"]}
    assert all(r["errors"] == [] for r in results)
    assert (await cash(api, token))["total"] == 40
    w = key()
    results = await asyncio.gather(
        *(withdraw(api, token, "15", idempotency_key=w) for _ in range(10))
    )
    assert len({r["transaction"]["id"] for r in results}) == 1
    assert await cash(api, token) == {"total": 40, "available": 25, "held": 15}
    assert len((await transactions(api, token))["edges"]) == 2


async def test_fifty_concurrent_withdrawals(api: Api) -> None:
    token = await signed_in(api)
    await deposit(api, token, "100")
    negative: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            for row in (await account(api, token))["cash"]:
                if Decimal(row["available"]) < 0 or Decimal(row["total"]) < 0:
                    negative.append(row)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(withdraw(api, token, "10") for _ in range(50)))
    done.set()
    await watcher
    ok = [r for r in results if r["errors"] == []]
    refused = [r for r in results if r["errors"]]
    assert len(ok) == 10
    assert len(refused) == 40
    assert all(codes(r) == ["INSUFFICIENT_FUNDS"] for r in refused)
    # Nothing is available; what has not been paid out yet (the worker may already have
    # settled some, depending on load) is exactly what is held.
    mid = await cash(api, token)
    assert mid["available"] == 0
    assert mid["total"] == mid["held"]
    ids = {r["transaction"]["id"] for r in ok}
    assert set((await wait_settled(api, token, ids)).values()) == {"COMPLETED"}
    assert await cash(api, token) == {"total": 0, "available": 0, "held": 0}
    assert negative == []


async def test_history_filters_and_keyset_pagination(api: Api) -> None:
    token = await signed_in(api)
    made = []
    for i in range(5):
        made.append((await deposit(api, token, f"{i + 1}"))["transaction"]["id"])
    made.append((await withdraw(api, token, "1"))["transaction"]["id"])
    seen: list[str] = []
    after = None
    while True:
        page = await transactions(api, token, first=2, after=after)
        seen += [e["node"]["id"] for e in page["edges"]]
        assert len(page["edges"]) <= 2
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert seen == list(reversed(made))  # newest first, nothing repeated or skipped
    deposits = await transactions(api, token, type="DEPOSIT")
    assert len(deposits["edges"]) == 5
    withdrawals = await transactions(api, token, type="WITHDRAWAL")
    assert [e["node"]["id"] for e in withdrawals["edges"]] == [made[-1]]
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert (await transactions(api, token, startDate=tomorrow))["edges"] == []
    yesterday = (today - timedelta(days=1)).isoformat()
    assert (await transactions(api, token, endDate=yesterday))["edges"] == []
    ranged = await transactions(api, token, startDate=today.isoformat(), endDate=tomorrow)
    assert len(ranged["edges"]) == 6
    assert len((await transactions(api, token, first=1000))["edges"]) == 6
    empty = await transactions(api, token, first=0)
    assert empty["edges"] == []
    assert empty["pageInfo"] == {"hasNextPage": True, "endCursor": None}


async def test_history_is_private_and_bad_arguments_are_coded(api: Api) -> None:
    token = await signed_in(api)
    await deposit(api, token, "5")
    other = await signed_in(api)
    assert (await transactions(api, other))["edges"] == []
    from tests.funds.helpers import TRANSACTIONS

    for variables in ({"after": "not-a-cursor"}, {"after": "%%%"}, {"first": -1}):
        body = await api.gql(TRANSACTIONS, variables, token)
        assert error_code(body) == "BAD_USER_INPUT", body


async def test_limits(api: Api) -> None:
    token = await signed_in(api)
    result = await deposit(api, token, "1000000.01")
    assert codes(result) == ["LIMIT_EXCEEDED"]
    for _ in range(5):
        assert (await deposit(api, token, "1000000"))["errors"] == []
    result = await deposit(api, token, "0.01")
    assert codes(result) == ["LIMIT_EXCEEDED"]
    assert "Daily" in result["errors"][0]["message"]
    # other currencies have their own daily allowance; a failed transfer does not count
    assert (await deposit(api, token, "10", currency="EUR"))["errors"] == []
    assert (await cash(api, token))["total"] == 5_000_000


async def test_control_characters_in_keys_and_methods_are_refused(api: Api) -> None:
    token = await signed_in(api)
    for field, value in (("idempotencyKey", "k\x00ey"), ("paymentMethod", "card\x00")):
        payload = {"amount": "1", "currency": "USD", "paymentMethod": "card",
                   "idempotencyKey": key(), field: value}  # fmt: skip
        body = await api.gql(DEPOSIT, {"input": payload}, token)
        assert [(e["code"], e["field"]) for e in body["data"]["deposit"]["errors"]] == [
            ("INVALID_INPUT", field)
        ]
