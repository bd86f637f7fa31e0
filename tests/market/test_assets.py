"""Assets: createAsset (ADMIN only, validation codes, default calendars), asset, assets
(search, keyset pagination), and the demo universe loader."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from bourse.app.demo.assets import DEMO_ASSETS
from bourse.app.demo.loader import load_demo
from bourse.clock import utcnow
from bourse.settings import Settings
from models.calendars import calendar
from models.services import Services
from tests.accounts.helpers import new_user
from tests.support.server import Api

FIELDS = "id symbol name assetClass currency tickSize fractionable tradable marketCalendar"
CREATE = f"""mutation($input: CreateAssetInput!) {{ createAsset(input: $input) {{
  asset {{ {FIELDS} quantityIncrement referencePrice }} errors {{ field code message }} }} }}"""
ASSET = f"query($id: String!) {{ asset(id: $id) {{ {FIELDS} }} }}"
ASSETS = """query($s: String, $n: Int, $a: String) { assets(search: $s, first: $n, after: $a) {
  edges { cursor node { id name } } pageInfo { hasNextPage endCursor } } }"""


def tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def asset_input(symbol: str, **over: Any) -> dict[str, Any]:
    return {
        "symbol": symbol, "name": f"Test {symbol}", "assetClass": "EQUITY", "currency": "USD",
        "tickSize": "0.01", "fractionable": True, "tradable": True, "referencePrice": "25.50",
        **over,
    }  # fmt: skip


async def create(api: Api, token: str | None, **fields: Any) -> dict[str, Any]:
    return await api.gql(CREATE, {"input": asset_input(**fields)}, token)


async def test_create_asset_is_admin_only(api: Api, admin_token: str) -> None:
    body = await create(api, None, symbol=f"A{tag()}")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    _, _, customer = await new_user(api, "mk")
    body = await create(api, customer["token"], symbol=f"A{tag()}")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    sym = f"A{tag()}"
    body = await create(api, admin_token, symbol=sym.lower(), name="  Acme Widgets  ")
    assert "errors" not in body, body
    payload = body["data"]["createAsset"]
    assert payload["errors"] == []
    assert payload["asset"] == {
        "id": sym, "symbol": sym, "name": "Acme Widgets", "assetClass": "EQUITY",
        "currency": "USD", "tickSize": "0.01", "fractionable": True, "tradable": True,
        "marketCalendar": "XNYS", "quantityIncrement": "0.000001", "referencePrice": "25.5",
    }  # fmt: skip
    # The same symbol again, in any case.
    again = (await create(api, admin_token, symbol=sym.lower()))["data"]["createAsset"]
    assert [e["code"] for e in again["errors"]] == ["ASSET_EXISTS"]
    assert again["asset"] is None


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"symbol": "bad symbol!"}, "INVALID_SYMBOL", "symbol"),
        ({"symbol": "X" * 17}, "INVALID_SYMBOL", "symbol"),
        ({"tickSize": "0"}, "INVALID_TICK_SIZE", "tickSize"),
        ({"tickSize": "abc"}, "INVALID_TICK_SIZE", "tickSize"),
        ({"tickSize": "0.000000001"}, "INVALID_TICK_SIZE", "tickSize"),
        ({"referencePrice": "-1"}, "INVALID_PRICE", "referencePrice"),
        ({"referencePrice": "NaN"}, "INVALID_PRICE", "referencePrice"),
        ({"referencePrice": "1e15"}, "INVALID_PRICE", "referencePrice"),
        ({"currency": "XYZ"}, "UNSUPPORTED_CURRENCY", "currency"),
        ({"marketCalendar": "XLON"}, "INVALID_CALENDAR", "marketCalendar"),
    ],
)
async def test_create_asset_validation(
    api: Api, admin_token: str, fields: dict[str, Any], code: str, field: str
) -> None:
    symbol = fields.pop("symbol", f"V{tag()}")
    body = await create(api, admin_token, symbol=symbol, **fields)
    assert "errors" not in body, body
    payload = body["data"]["createAsset"]
    assert payload["asset"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]


async def test_several_problems_are_reported_together(api: Api, admin_token: str) -> None:
    body = await create(api, admin_token, symbol="??", tickSize="-1", currency="ZZZ")
    codes = {e["code"] for e in body["data"]["createAsset"]["errors"]}
    assert codes == {"INVALID_SYMBOL", "INVALID_TICK_SIZE", "UNSUPPORTED_CURRENCY"}


@pytest.mark.parametrize(
    ("asset_class", "calendar", "expected"),
    [("CRYPTO", None, "24x7"), ("EQUITY", None, "XNYS"), ("ETF", None, "XNYS"),
     ("EQUITY", "24x7", "24x7"), ("CRYPTO", "XNYS", "XNYS")],
)  # fmt: skip
async def test_default_calendars(
    api: Api, admin_token: str, asset_class: str, calendar: str | None, expected: str
) -> None:
    body = await create(
        api, admin_token, symbol=f"K{tag()}", assetClass=asset_class, marketCalendar=calendar
    )
    assert body["data"]["createAsset"]["asset"]["marketCalendar"] == expected


async def test_asset_lookup_is_case_insensitive_and_null_when_unknown(
    api: Api, admin_token: str
) -> None:
    sym = f"L{tag()}.B"
    await create(api, admin_token, symbol=sym)
    for asked in (sym, sym.lower(), f"  {sym.lower()} "):
        body = await api.gql(ASSET, {"id": asked})
        assert body["data"]["asset"]["id"] == sym, body
    assert (await api.gql(ASSET, {"id": "NOPE-" + tag()}))["data"]["asset"] is None
    assert (await api.gql(ASSET, {"id": "x" * 5000}))["data"]["asset"] is None


async def test_assets_search_and_keyset_pagination(api: Api, admin_token: str) -> None:
    prefix = f"P{tag()}"
    word = f"zq{tag().lower()}"
    symbols = [f"{prefix}{i}" for i in range(7)]
    for i, sym in enumerate(symbols):
        await create(api, admin_token, symbol=sym, name=f"Pager {word} {i}" if i < 3 else "Other")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await api.gql(ASSETS, {"s": prefix.lower(), "n": 3, "a": after})
        assert "errors" not in body, body
        conn = body["data"]["assets"]
        seen += [e["node"]["id"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert after == conn["edges"][-1]["cursor"]
    assert seen == symbols  # ordered by symbol, none twice, none missing
    assert pages == 3
    # Search by a word of the name.
    body = await api.gql(ASSETS, {"s": word.upper(), "n": 50})
    assert [e["node"]["id"] for e in body["data"]["assets"]["edges"]] == symbols[:3]
    # LIKE wildcards are literal.
    body = await api.gql(ASSETS, {"s": "%", "n": 5})
    assert body["data"]["assets"]["edges"] == []
    # first is capped at 100.
    body = await api.gql(ASSETS, {"n": 1000})
    assert len(body["data"]["assets"]["edges"]) <= 100


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "", "Pz8_"])
async def test_bad_cursor_is_bad_user_input(api: Api, cursor: str) -> None:
    body = await api.gql(ASSETS, {"n": 2, "a": cursor})
    if cursor == "":
        assert "errors" not in body  # an empty cursor means the first page
        return
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["data"] is None


async def test_demo_loader_is_idempotent(settings: Settings, services: Services) -> None:
    assert settings.database_url
    assert settings.redis_url
    await load_demo(settings, settings.database_url, settings.redis_url)
    first = {a.symbol: a for a in await services.assets.all()}
    await load_demo(settings, settings.database_url, settings.redis_url)
    second = {a.symbol: a for a in await services.assets.all()}
    assert set(first) == set(second)
    demo = {a.symbol for a in DEMO_ASSETS}
    assert len(demo) >= 30
    assert demo <= set(second)
    assert {"AAPL", "MSFT", "TSLA", "SPY", "BTC-USD"} <= demo
    for sym in ("AAPL", "MSFT", "TSLA", "SPY", "BTC-USD"):
        a = second[sym]
        assert a.fractionable
        assert a.tradable
        assert a.previous_close is not None
    assert second["BTC-USD"].market_calendar == "24x7"
    assert second["AAPL"].market_calendar == "XNYS"
    assert (await services.news.latest(None, 50)) != []


async def test_decimals_are_shown_without_exponents(api: Api, admin_token: str) -> None:
    # Decimal("100").normalize() is 1E+2: prices must read "100".
    body = await create(api, admin_token, symbol=f"E{tag()}", referencePrice="100.00", tickSize="1")
    asset = body["data"]["createAsset"]["asset"]
    assert (asset["referencePrice"], asset["tickSize"]) == ("100", "1")


async def test_hostile_ids_are_answered_not_crashed(api: Api) -> None:
    # A NUL byte cannot reach PostgreSQL text: it must read as "no such asset", not a 500.
    assert (await api.gql(ASSET, {"id": "A\x00B"}))["data"]["asset"] is None
    body = await api.gql(ASSETS, {"s": "\x00", "n": 1})
    assert "errors" not in body, body
    body = await api.gql(
        "query($a: String!) { marketHistory(assetId: $a) { assetId } }", {"a": "\x00"}
    )
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_ASSET"


NEXT_OPEN = "query($id: String!) { asset(id: $id) { marketOpen nextOpen } }"


@pytest.mark.parametrize("asset_class", ["EQUITY", "CRYPTO"])
async def test_next_open_is_now_while_open_else_a_future_open_session(
    api: Api, admin_token: str, asset_class: str
) -> None:
    symbol = f"N{tag()}"
    created = await create(api, admin_token, symbol=symbol, assetClass=asset_class)
    assert created["data"]["createAsset"]["errors"] == []
    before = utcnow()
    body = await api.gql(NEXT_OPEN, {"id": symbol})
    after = utcnow()
    asset = body["data"]["asset"]
    at = datetime.fromisoformat(asset["nextOpen"])
    name = "24x7" if asset_class == "CRYPTO" else "XNYS"
    if asset["marketOpen"]:
        assert before - timedelta(seconds=1) <= at <= after + timedelta(seconds=1)
    else:
        assert name == "XNYS"
        assert at > after
        assert calendar(name).is_open(at)  # the very first moment of a session
        assert not calendar(name).is_open(at - timedelta(minutes=1))
