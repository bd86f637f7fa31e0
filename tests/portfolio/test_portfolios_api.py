"""Tracked portfolios through the API: CRUD, merging, validation codes, limits, isolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.services import Services
from tests.accounts.helpers import error_code
from tests.portfolio.conftest import MakeAssets, customer, fill, set_price
from tests.portfolio.helpers import (
    ADD,
    CREATE,
    DELETE,
    PERFORMANCE,
    PORTFOLIO,
    PORTFOLIOS,
    REMOVE,
    UPDATE,
    codes,
    data,
)
from tests.support.server import Api


async def create(api: Api, token: str, name: str = "Ideas") -> dict[str, object]:
    payload = await data(api, CREATE, {"input": {"name": name, "description": "what-ifs"}}, token)
    assert payload["errors"] == []
    portfolio: dict[str, object] = payload["portfolio"]
    return portfolio


async def test_tracked_portfolio_crud_and_merging(api: Api, make_assets: MakeAssets) -> None:
    token, _ = await customer(api)
    a, b = await make_assets(2, price="50")
    created = await create(api, token)
    assert created["isDefault"] is False
    assert created["assets"] == []
    assert created["totalValue"] == "0.00"
    pid = created["id"]

    added = await data(
        api,
        ADD,
        {"input": {"portfolioId": pid, "assetId": a, "quantity": "10", "purchasePrice": "40"}},
        token,
    )
    assert added["errors"] == []
    again = await data(
        api,
        ADD,
        {
            "input": {
                "portfolioId": pid,
                "assetId": a.lower(),
                "quantity": "30",
                "purchasePrice": "60",
            }
        },
        token,
    )
    assert again["errors"] == []
    await data(
        api,
        ADD,
        {"input": {"portfolioId": pid, "assetId": b, "quantity": "1.5", "purchasePrice": "10"}},
        token,
    )
    holdings = {h["assetId"]: h for h in (await data(api, PORTFOLIO, {"id": pid}, token))["assets"]}
    # merged: 10 @ 40 + 30 @ 60 = 40 shares costing 2200, average 55; worth 40 * 50 = 2000
    assert holdings[a]["quantity"] == "40"
    assert holdings[a]["averageCost"] == "55"
    assert holdings[a]["currentValue"] == "2000.00"
    assert holdings[a]["unrealizedPnl"] == "-200.00"
    assert holdings[b]["currentValue"] == "75.00"
    portfolio = await data(api, PORTFOLIO, {"id": pid}, token)
    assert portfolio["totalValue"] == "2075.00"
    assert portfolio["cash"] == "0.00"

    removed = await data(api, REMOVE, {"p": pid, "a": a}, token)
    assert removed["errors"] == []
    assert [h["assetId"] for h in removed["portfolio"]["assets"]] == [b]
    missing = await data(api, REMOVE, {"p": pid, "a": a}, token)
    assert codes(missing) == ["NOT_FOUND"]

    renamed = await data(api, UPDATE, {"input": {"id": pid, "name": "Later", "description": ""}},
                         token)  # fmt: skip
    assert renamed["portfolio"] == {"id": pid, "name": "Later", "description": None}

    listed = await data(api, PORTFOLIOS, None, token)
    assert [p["isDefault"] for p in listed] == [True, False]
    assert listed[1]["id"] == pid

    deleted = await data(api, DELETE, {"id": pid}, token)
    assert deleted == {"deletedPortfolioId": pid, "errors": []}
    assert await data(api, PORTFOLIO, {"id": pid}, token) is None


async def test_the_default_portfolio_is_not_editable(api: Api, make_assets: MakeAssets) -> None:
    token, _ = await customer(api)
    (sym,) = await make_assets()
    default = await data(api, PORTFOLIO, None, token)
    assert default["isDefault"] is True
    assert default["name"] == "Brokerage"
    pid = default["id"]
    add = await data(
        api,
        ADD,
        {"input": {"portfolioId": pid, "assetId": sym, "quantity": "1", "purchasePrice": "1"}},
        token,
    )
    assert codes(add) == ["NOT_ALLOWED"]
    assert codes(await data(api, REMOVE, {"p": pid, "a": sym}, token)) == ["NOT_ALLOWED"]
    assert codes(await data(api, UPDATE, {"input": {"id": pid, "name": "x"}}, token)) == [
        "NOT_ALLOWED"
    ]
    assert codes(await data(api, DELETE, {"id": pid}, token)) == ["NOT_ALLOWED"]
    # one default portfolio, whatever is asked
    assert (await data(api, PORTFOLIO, {"id": pid}, token))["id"] == pid
    assert [p["id"] for p in await data(api, PORTFOLIOS, None, token)] == [pid]


@pytest.mark.parametrize(
    ("quantity", "price", "expected"),
    [
        ("0", "1", ["INVALID_QUANTITY"]),
        ("-1", "1", ["INVALID_QUANTITY"]),
        ("abc", "1", ["INVALID_QUANTITY"]),
        ("1.123456789", "1", ["INVALID_QUANTITY"]),
        ("1e40", "1", ["INVALID_QUANTITY"]),
        ("NaN", "1", ["INVALID_QUANTITY"]),
        ("1", "0", ["INVALID_PRICE"]),
        ("1", "", ["INVALID_PRICE"]),
        ("1", "Infinity", ["INVALID_PRICE"]),
        ("x", "-2", ["INVALID_QUANTITY", "INVALID_PRICE"]),
    ],
)
async def test_bad_quantities_and_prices_are_payload_errors(
    api: Api, make_assets: MakeAssets, quantity: str, price: str, expected: list[str]
) -> None:
    token, _ = await customer(api)
    (sym,) = await make_assets()
    pid = (await create(api, token))["id"]
    result = await data(
        api,
        ADD,
        {
            "input": {
                "portfolioId": pid,
                "assetId": sym,
                "quantity": quantity,
                "purchasePrice": price,
            }
        },
        token,
    )
    assert codes(result) == expected
    assert result["portfolio"] is None


async def test_unknown_assets_and_bad_names(api: Api) -> None:
    token, _ = await customer(api)
    pid = (await create(api, token))["id"]
    result = await data(
        api,
        ADD,
        {
            "input": {
                "portfolioId": pid,
                "assetId": "NOPE-NOT-LISTED",
                "quantity": "1",
                "purchasePrice": "1",
            }
        },
        token,
    )
    assert codes(result) == ["UNKNOWN_ASSET"]
    assert codes(await data(api, REMOVE, {"p": pid, "a": "NOPE-NOT-LISTED"}, token)) == [
        "UNKNOWN_ASSET"
    ]
    for name in ["", "   ", "x" * 101, "nul\x00byte", "bell\x07"]:
        result = await data(api, CREATE, {"input": {"name": name}}, token)
        assert codes(result) == ["INVALID_INPUT"]
        assert result["errors"][0]["field"] == "name"


async def test_another_users_portfolio_does_not_exist(api: Api, make_assets: MakeAssets) -> None:
    owner, _ = await customer(api)
    intruder, _ = await customer(api)
    (sym,) = await make_assets()
    pid = (await create(api, owner))["id"]
    default_id = (await data(api, PORTFOLIO, None, owner))["id"]
    for target in (pid, default_id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert await data(api, PORTFOLIO, {"id": target}, intruder) is None
        body = await api.gql(PERFORMANCE, {"p": target}, intruder)
        assert error_code(body) == "NOT_FOUND"
        assert body["data"]["portfolioPerformance"] is None
        add = await data(
            api,
            ADD,
            {
                "input": {
                    "portfolioId": target,
                    "assetId": sym,
                    "quantity": "1",
                    "purchasePrice": "1",
                }
            },
            intruder,
        )
        assert codes(add) == ["NOT_FOUND"]
        assert codes(await data(api, REMOVE, {"p": target, "a": sym}, intruder)) == ["NOT_FOUND"]
        assert codes(await data(api, DELETE, {"id": target}, intruder)) == ["NOT_FOUND"]
        assert codes(await data(api, UPDATE, {"input": {"id": target, "name": "mine"}},
                                intruder)) == ["NOT_FOUND"]  # fmt: skip
    assert (await data(api, PORTFOLIO, {"id": pid}, owner))["id"] == pid


async def test_tracked_portfolio_limit(api: Api, services: Services) -> None:
    token, _ = await customer(api)
    limit = services.settings.portfolio_max_tracked
    for i in range(limit):
        await create(api, token, f"p{i}")
    over = await data(api, CREATE, {"input": {"name": "one too many"}}, token)
    assert codes(over) == ["TOO_MANY_PORTFOLIOS"]
    assert len(await data(api, PORTFOLIOS, None, token)) == limit + 1  # + the default one


async def test_portfolio_needs_sign_in(api: Api) -> None:
    for query in (PORTFOLIO, PORTFOLIOS, PERFORMANCE):
        assert error_code(await api.gql(query)) == "UNAUTHENTICATED"


async def test_default_portfolio_total_includes_cash_in_the_base_currency(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, user = await customer(api)
    (usd,) = await make_assets(price="10")
    (eur,) = await make_assets(price="20", currency="EUR")
    await fill(services, user, usd, "BUY", "3", "10", datetime.now(UTC))
    await fill(services, user, eur, "BUY", "2", "20", datetime.now(UTC))
    await set_price(services, [eur], "25")
    await services.funds.deposit(user, "100.00", "USD", "sandbox:bank", "k1")
    await services.funds.deposit(user, "10.00", "EUR", "sandbox:bank", "k2")
    portfolio = await data(api, PORTFOLIO, None, token)
    by = {h["assetId"]: h for h in portfolio["assets"]}
    assert by[eur]["currency"] == "EUR"
    assert by[eur]["currentValue"] == "50.00"
    assert by[eur]["unrealizedPnl"] == "10.00"
    assert by[eur]["currentValueBase"] == "54.00"  # 50 EUR at the default 1.08 USD/EUR
    assert portfolio["baseCurrency"] == "USD"
    assert portfolio["holdingsValue"] == "84.00"
    assert portfolio["cash"] == "110.80"  # 100 USD + 10 EUR
    assert portfolio["totalValue"] == "194.80"
