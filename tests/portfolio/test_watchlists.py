"""Watchlists: order kept, duplicates are no-ops, limits, unknown assets, isolation."""

from __future__ import annotations

from models.services import Services
from tests.accounts.helpers import error_code
from tests.portfolio.conftest import MakeAssets, customer, set_price
from tests.portfolio.helpers import ADD_WL, CREATE_WL, DELETE_WL, REMOVE_WL, WATCHLISTS, codes, data
from tests.support.server import Api


async def test_watchlist_keeps_the_order_assets_were_added(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, _ = await customer(api)
    a, b, c, d = await make_assets(4, price="12.5")
    await set_price(services, [b], "13")
    created = await data(api, CREATE_WL, {"input": {"name": "Tech", "assetIds": [c, a, c]}}, token)
    assert created["errors"] == []
    wid = created["watchlist"]["id"]
    assert created["watchlist"]["assetIds"] == [c, a]  # repeats kept once
    for sym in (d, b, a):  # a is already there: no change, no error
        result = await data(api, ADD_WL, {"w": wid, "a": sym}, token)
        assert result["errors"] == []
    removed = await data(api, REMOVE_WL, {"w": wid, "a": c}, token)
    assert removed["watchlist"]["assetIds"] == [a, d, b]
    again = await data(api, REMOVE_WL, {"w": wid, "a": c}, token)  # not there: no change
    assert again["errors"] == []
    await data(api, ADD_WL, {"w": wid, "a": c.lower()}, token)
    (listed,) = await data(api, WATCHLISTS, None, token)
    assert listed["assetIds"] == [a, d, b, c]
    assert [i["price"] for i in listed["items"]] == ["12.5", "12.5", "13", "12.5"]

    deleted = await data(api, DELETE_WL, {"id": wid}, token)
    assert deleted["watchlist"]["assetIds"] == [a, d, b, c]
    assert await data(api, WATCHLISTS, None, token) == []
    assert codes(await data(api, DELETE_WL, {"id": wid}, token)) == ["NOT_FOUND"]


async def test_watchlist_limits(api: Api, services: Services, make_assets: MakeAssets) -> None:
    token, _ = await customer(api)
    max_assets = services.settings.watchlist_max_assets
    symbols = await make_assets(max_assets + 1)
    too_big = await data(api, CREATE_WL, {"input": {"name": "all", "assetIds": symbols}}, token)
    assert codes(too_big) == ["WATCHLIST_FULL"]
    full = await data(api, CREATE_WL, {"input": {"name": "full", "assetIds": symbols[:-1]}}, token)
    assert full["errors"] == []
    wid = full["watchlist"]["id"]
    assert codes(await data(api, ADD_WL, {"w": wid, "a": symbols[-1]}, token)) == ["WATCHLIST_FULL"]
    assert (await data(api, ADD_WL, {"w": wid, "a": symbols[0]}, token))["errors"] == []

    for i in range(services.settings.watchlist_max - 1):
        assert (await data(api, CREATE_WL, {"input": {"name": f"w{i}"}}, token))["errors"] == []
    over = await data(api, CREATE_WL, {"input": {"name": "one too many"}}, token)
    assert codes(over) == ["TOO_MANY_WATCHLISTS"]


async def test_unknown_assets_and_names(api: Api, make_assets: MakeAssets) -> None:
    token, _ = await customer(api)
    (sym,) = await make_assets()
    bad = await data(api, CREATE_WL, {"input": {"name": "x", "assetIds": [sym, "NOPE-NOT-LISTED"]}},
                     token)  # fmt: skip
    assert codes(bad) == ["UNKNOWN_ASSET"]
    assert codes(await data(api, CREATE_WL, {"input": {"name": " "}}, token)) == ["INVALID_INPUT"]
    wid = (await data(api, CREATE_WL, {"input": {"name": "ok"}}, token))["watchlist"]["id"]
    for mutation in (ADD_WL, REMOVE_WL):
        assert codes(await data(api, mutation, {"w": wid, "a": "NOPE-NOT-LISTED"}, token)) == [
            "UNKNOWN_ASSET"
        ]
        for bad in ("", "A\x00B", "é"):
            assert codes(await data(api, mutation, {"w": wid, "a": bad}, token)) == [
                "UNKNOWN_ASSET"
            ]


async def test_another_users_watchlist_does_not_exist(api: Api, make_assets: MakeAssets) -> None:
    owner, _ = await customer(api)
    intruder, _ = await customer(api)
    (sym,) = await make_assets()
    wid = (await data(api, CREATE_WL, {"input": {"name": "mine", "assetIds": [sym]}}, owner))[
        "watchlist"
    ]["id"]
    for target in (wid, "garbage"):
        for mutation in (ADD_WL, REMOVE_WL):
            assert codes(await data(api, mutation, {"w": target, "a": sym}, intruder)) == [
                "NOT_FOUND"
            ]
        assert codes(await data(api, DELETE_WL, {"id": target}, intruder)) == ["NOT_FOUND"]
    body = await api.gql("query($id: ID!) { watchlist(id: $id) { id } }", {"id": wid}, intruder)
    assert body["data"]["watchlist"] is None
    assert await data(api, WATCHLISTS, None, intruder) == []
    (mine,) = await data(api, WATCHLISTS, None, owner)
    assert mine["assetIds"] == [sym]
    assert error_code(await api.gql(WATCHLISTS)) == "UNAUTHENTICATED"
