"""Extended hours (issue 14 item 6): the calendar's sessions, extended-hours limit orders that
trade pre-market and after-hours while regular ones wait for the open, DAY expiry at 16:00 and
20:00, and the liquidity provider's wider quotes outside the regular session.

The clock is always injected: a Monday in 2030 (a NYSE trading day), never today's date. The
end-to-end test runs the platform's real processes (shards, settlement) with an in-process API
whose order book reads that clock; the settlement's relay reads the real clock, which is before
it, so a queued order stays queued.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bourse.keys import input_key, shard_for
from bourse.settings import Settings
from matching.core.engine import Engine
from matching.core.snapshot import dump_engine, load_engine
from matching.wire import decode_command
from models.assets import Asset, AssetClass, NewAsset
from models.calendars import NEW_YORK, Session, calendar
from models.exchange import scales
from models.liquidity import Quoting, session_quoting
from models.services import Services, open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    CANCEL,
    ORDER_FIELDS,
    cash,
    get_order,
    grant_shares,
    trader,
    wait_order,
)
from tests.support.server import Api, running_api
from tests.support.stack import Stack
from workers.liquidity import LiquidityProvider
from workers.settlement import DayExpiry

XNYS = calendar("XNYS")
PLACE = f"""mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{
  order {{ {ORDER_FIELDS} queuedUntil extendedHours }} errors {{ field code message }} }} }}"""
MONDAY = (2030, 3, 18)  # a NYSE trading day


def ny(hour: int, minute: int = 0, day: tuple[int, int, int] = MONDAY) -> datetime:
    return datetime(*day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


# ---------------------------------------------------------------------- the calendar


def test_the_calendar_knows_the_sessions() -> None:
    expected = [
        ((3, 59), Session.CLOSED),
        ((4, 0), Session.PRE),
        ((9, 29), Session.PRE),
        ((9, 30), Session.REGULAR),
        ((15, 59), Session.REGULAR),
        ((16, 0), Session.POST),
        ((19, 59), Session.POST),
        ((20, 0), Session.CLOSED),
    ]
    for (h, m), session in expected:
        assert XNYS.session(ny(h, m)) is session, (h, m)
    # The day after Thanksgiving closes at 13:00; its after-hours end at 17:00.
    friday = (2026, 11, 27)
    assert XNYS.session(ny(12, 59, friday)) is Session.REGULAR
    assert XNYS.session(ny(13, 0, friday)) is Session.POST
    assert XNYS.session(ny(17, 0, friday)) is Session.CLOSED
    assert XNYS.previous_extended_close(ny(18, 0, friday)) == ny(17, 0, friday)
    # Thanksgiving and a Saturday have no session at all.
    for day in ((2026, 11, 26), (2026, 11, 28)):
        assert {XNYS.session(ny(h, 0, day)) for h in (5, 12, 18)} == {Session.CLOSED}
    assert calendar("24x7").session(ny(3, 0)) is Session.REGULAR


def test_the_next_open_counts_extended_sessions_only_when_asked() -> None:
    evening = ny(18, 0)
    assert XNYS.next_open(evening) == ny(9, 30, (2030, 3, 19))
    assert XNYS.next_open(evening, extended=True) == evening  # after-hours is on
    night = ny(21, 0)
    assert XNYS.next_open(night, extended=True) == ny(4, 0, (2030, 3, 19))
    # From Wednesday night before Thanksgiving to the Friday's pre-market.
    assert XNYS.next_open(ny(21, 0, (2026, 11, 25)), extended=True) == ny(4, 0, (2026, 11, 27))


# ---------------------------------------------------------------------- the engine


def _engine() -> Engine:
    e = Engine()
    e.add_asset("X", price_scale=2, tick_size=1, qty_scale=0)
    return e


def test_extended_day_orders_outlive_the_regular_close_only() -> None:
    e = _engine()
    e.new_order("reg", "u1", "X", "BUY", "LIMIT", "DAY", 5, 1000, ts=1)
    e.new_order("ext", "u1", "X", "BUY", "LIMIT", "DAY", 5, 999, ts=2, extended_hours=True)
    e.new_order("gtc", "u1", "X", "BUY", "LIMIT", "GTC", 5, 998, ts=3, extended_hours=True)
    regular = e.apply({"cmd": "EXPIRE_DAY", "asset_id": "X", "session": "REGULAR", "ts": 4})
    assert [(ev[0], ev[2]) for ev in regular] == [("EXPIRED", "reg")]
    # The snapshot keeps the flag: a restored engine ends the day the same way.
    restored = load_engine(dump_engine(e))
    for engine in (e, restored):
        end = engine.apply({"cmd": "EXPIRE_DAY", "asset_id": "X", "ts": 5})
        assert [(ev[0], ev[2]) for ev in end] == [("EXPIRED", "ext")]
        assert "gtc" in engine.orders
    assert dump_engine(e) == dump_engine(restored)


def test_an_unknown_session_or_flag_is_malformed() -> None:
    e = _engine()
    bad = e.apply({"cmd": "EXPIRE_DAY", "asset_id": "X", "session": "POST", "ts": 1})
    assert [(ev[0], ev[4]) for ev in bad] == [("REJECTED", "MALFORMED")]
    order = {
        "cmd": "NEW_ORDER", "order_id": "o1", "user_id": "u", "asset_id": "X", "side": "BUY",
        "order_type": "LIMIT", "tif": "DAY", "quantity": 1, "price": 100, "ts": 1,
        "extended_hours": "yes",
    }  # fmt: skip
    assert [(ev[0], ev[4]) for ev in e.apply(order)] == [("REJECTED", "MALFORMED")]


# ---------------------------------------------------------------------- DAY expiry


@pytest.fixture
async def services(settings: Settings, redis_prefix: str) -> AsyncIterator[Services]:
    assert settings.database_url
    assert settings.redis_url
    scoped = settings.model_copy(update={"redis_prefix": redis_prefix})
    async with open_services(scoped, settings.database_url, settings.redis_url) as opened:
        yield opened


async def equity(services: Services, sym: str, price: str = "100.00") -> None:
    await services.assets.upsert_many(
        [NewAsset(sym, f"Test {sym}", AssetClass.EQUITY, "USD", "0.01", True, True, price)]
    )


async def expiries(services: Services, sym: str) -> list[dict[str, Any]]:
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))
    commands = [decode_command(e[1][b"command"]) for e in await services.redis.xrange(stream)]
    return [c for c in commands if c["cmd"] == "EXPIRE_DAY" and c["asset_id"] == sym]


async def test_day_orders_expire_at_16_00_and_extended_ones_at_20_00(
    services: Services,
) -> None:
    sym = symbol("XD")
    await equity(services, sym)
    expiry = DayExpiry(services)
    await expiry.step(ny(15, 0))  # Friday's end of day, not yet handled
    assert [c.get("session") for c in await expiries(services, sym)] == [None]
    assert sym in await expiry.step(ny(16, 30))
    assert sym not in await expiry.step(ny(17, 0))
    assert sym in await expiry.step(ny(20, 5))
    assert sym not in await expiry.step(ny(21, 0))
    # Friday's end, then Monday's regular close (regular DAY orders only), then Monday's end.
    assert [c.get("session") for c in await expiries(services, sym)] == [None, "REGULAR", None]


# ---------------------------------------------------------------------- liquidity provider


def test_quotes_are_wider_outside_the_regular_session() -> None:
    q = Quoting(spread_bps=10, level_step_bps=10, levels=3, quote_notional=Decimal(1000))
    assert session_quoting(q, Session.REGULAR, 4) == q
    assert session_quoting(q, Session.PRE, 4) == Quoting(40, 10, 3, Decimal(1000))
    assert session_quoting(q, Session.POST, 4) == Quoting(40, 10, 3, Decimal(1000))
    assert session_quoting(q, Session.CLOSED, 4) is None


async def test_the_liquidity_provider_quotes_wider_after_hours_and_not_at_night(
    services: Services,
) -> None:
    assert services.settings.market_hours == "calendar"
    sym = symbol("XL")
    await equity(services, sym)
    await services.liquidity.configure([sym])
    async with services.sessionmaker() as s:
        asset = await s.get(Asset, sym)
    assert asset is not None
    places = scales(asset).price_scale
    now = [ny(12, 0)]
    lp = LiquidityProvider(services, clock=lambda: now[0])
    stream = input_key(services.settings.redis_prefix, shard_for(sym, 2))

    async def best_quotes() -> tuple[Decimal, Decimal] | None:
        """The best bid and ask of the ladder the last step sent (None: only cancels)."""
        before = await services.redis.xlen(stream)
        await lp.step()
        entries = (await services.redis.xrange(stream))[before:]
        sent = [decode_command(e[1][b"command"]) for e in entries]
        new = [c for c in sent if c["cmd"] == "NEW_ORDER" and c["asset_id"] == sym]
        if not new:
            return None
        bids = [c["price"] for c in new if c["side"] == "BUY"]
        asks = [c["price"] for c in new if c["side"] == "SELL"]
        return Decimal(max(bids)).scaleb(-places), Decimal(min(asks)).scaleb(-places)

    assert await best_quotes() == (Decimal("99.95"), Decimal("100.05"))  # 10 bps
    now[0] = ny(18, 0)  # after-hours: the session changed, so it re-quotes, 4x wider
    assert await best_quotes() == (Decimal("99.80"), Decimal("100.20"))
    now[0] = ny(21, 0)  # closed: it withdraws
    assert await best_quotes() is None
    assert lp.state.get(sym) is None
    now[0] = ny(5, 0, (2030, 3, 19))  # pre-market
    assert await best_quotes() == (Decimal("99.80"), Decimal("100.20"))
    await lp.withdraw()
    await services.liquidity.configure([sym], enabled=False)


# ---------------------------------------------------------------------- end to end


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


@pytest.fixture(scope="module")
async def pinned_api(stack: Stack) -> AsyncIterator[Api]:
    """An API on the stack's shards, database and keys, with market hours by the calendar
    (the stack's own API trades any time); tests pin its order book's clock."""
    async with running_api(stack.settings.model_copy(update={"market_hours": "calendar"})) as api:
        yield api


def pin(api: Api, moment: datetime) -> None:
    assert api.app is not None
    api.app.state.services.orders.clock = lambda: moment


async def test_an_extended_hours_order_trades_at_18_00_while_a_regular_one_waits(
    pinned_api: Api, stack_services: Services
) -> None:
    api = pinned_api
    sym = symbol("XH")
    await equity(stack_services, sym)  # (listing it configures its book on the shard)
    pin(api, ny(18, 0))
    seller, seller_id = await trader(api)
    await grant_shares(stack_services, seller_id, sym, "10")
    buyer, _ = await trader(api, "1000")
    regular_buyer, _ = await trader(api, "1000")
    limit = {"assetId": sym, "orderSubType": "LIMIT", "price": "100.00", "quantity": "2"}

    ask = await placed(api, seller, orderType="SELL", extendedHours=True, **limit)
    assert ask["queuedUntil"] is None
    assert ask["extendedHours"] is True
    # A regular buy at the same moment, crossing that ask, waits for Tuesday's open.
    waiting = await placed(api, regular_buyer, orderType="BUY", timeInForce="DAY", **limit)
    assert waiting["extendedHours"] is False
    assert datetime.fromisoformat(waiting["queuedUntil"]) == ny(9, 30, (2030, 3, 19))
    bid = await placed(api, buyer, orderType="BUY", extendedHours=True, **limit)

    done = await wait_order(api, buyer, bid["id"], {"EXECUTED"})
    assert (done["filledQuantity"], done["averagePrice"]) == ("2", "100")
    assert (await wait_order(api, seller, ask["id"], {"EXECUTED"}))["filledQuantity"] == "2"
    assert await cash(api, buyer) == {"total": 800, "available": 800, "held": 0}
    still = await get_order(api, regular_buyer, waiting["id"])
    assert still is not None
    assert (still["status"], still["filledQuantity"]) == ("PENDING", "0")
    assert await cash(api, regular_buyer) == {"total": 1000, "available": 800, "held": 200}
    cancelled = await api.gql(CANCEL, {"id": waiting["id"]}, regular_buyer)
    assert cancelled["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
    assert await cash(api, regular_buyer) == {"total": 1000, "available": 1000, "held": 0}


async def test_extended_hours_is_for_limit_orders_and_has_its_own_hours(
    pinned_api: Api, stack_services: Services
) -> None:
    api = pinned_api
    sym = symbol("XR")
    await equity(stack_services, sym)
    pin(api, ny(18, 0))
    token, user_id = await trader(api, "1000")
    await grant_shares(stack_services, user_id, sym, "5")
    base = {"assetId": sym, "quantity": "1", "extendedHours": True}
    for fields in (
        {"orderType": "BUY", "orderSubType": "MARKET"},
        {"orderType": "SELL", "orderSubType": "STOP_LOSS", "stopPrice": "95.00"},
        {"orderType": "SELL", "orderSubType": "STOP_LIMIT", "stopPrice": "95.00", "price": "94"},
    ):
        refused = await place(api, token, **base, **fields)
        assert refused["order"] is None
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [
            ("INVALID_ORDER_TYPE", "extendedHours")
        ], fields
    limit = {"assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1"}
    # After-hours, an immediate order needs the flag; with it, an IOC runs now (nothing to
    # trade against here, so its remainder is cancelled rather than queued).
    closed = await place(api, token, price="90.00", timeInForce="IOC", **limit)
    assert [e["code"] for e in closed["errors"]] == ["MARKET_CLOSED"]
    ioc = await placed(api, token, price="90.00", timeInForce="IOC", extendedHours=True, **limit)
    assert ioc["queuedUntil"] is None
    assert (await wait_order(api, token, ioc["id"], {"CANCELLED"}))["cancelReason"] == (
        "IOC_REMAINDER"
    )
    # At night every session is closed: an extended order waits for the pre-market.
    pin(api, ny(21, 0))
    night = await placed(api, token, price="90.00", timeInForce="DAY", extendedHours=True, **limit)
    assert datetime.fromisoformat(night["queuedUntil"]) == ny(4, 0, (2030, 3, 19))
    assert (await api.gql(CANCEL, {"id": night["id"]}, token))["data"]["cancelOrder"]["order"][
        "status"
    ] == "CANCELLED"
    # A 24x7 asset takes the flag too (it is always in session).
    crypto = f"{symbol('XC')}-USD"
    await stack_services.assets.upsert_many(
        [NewAsset(crypto, "Coin", AssetClass.CRYPTO, "USD", "0.01", True, True, "50.00")]
    )
    coin = await placed(
        api, token, **{**limit, "assetId": crypto}, price="40.00", extendedHours=True
    )
    assert coin["queuedUntil"] is None
    assert (await api.gql(CANCEL, {"id": coin["id"]}, token))["data"]["cancelOrder"]["order"][
        "status"
    ] == "CANCELLED"
