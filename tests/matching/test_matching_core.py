"""Scenario tests of the pure core: one rule per test, events spelled out."""

from __future__ import annotations

from typing import Any

import pytest

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import Event, event_dict

A = "XYZ"


def engine(
    qty_scale: int = 0,
    collar_bps: int = 500,
    stp: str = "CANCEL_NEWEST",
    lot: int = 1,
    tick: int = 1,
) -> Engine:
    e = Engine()
    assert (
        e.add_asset(A, 2, tick, qty_scale, lot, collar_bps, stp, ts=1)[0][0] == "ASSET_CONFIGURED"
    )
    return e


def limit(
    e: Engine,
    oid: str,
    side: str,
    qty: int,
    price: int,
    *,
    user: str | None = None,
    tif: str = "GTC",
    ts: int = 10,
) -> list[Event]:
    return e.new_order(oid, user or f"user-{oid}", A, side, "LIMIT", tif, qty, price, ts=ts)


def market(
    e: Engine,
    oid: str,
    side: str,
    qty: int = 0,
    *,
    user: str | None = None,
    tif: str = "IOC",
    notional: int = 0,
) -> list[Event]:
    return e.new_order(
        oid, user or f"user-{oid}", A, side, "MARKET", tif, qty, notional=notional, ts=20
    )


def kinds(events: list[Event]) -> list[str]:
    return [ev[0] for ev in events]


def fills(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(maker, taker, price, quantity) of each fill."""
    return [(ev[4], ev[5], ev[9], ev[10]) for ev in events if ev[0] == "FILL"]


def cancelled(events: list[Event]) -> list[tuple[str, str, int]]:
    return [(ev[2], ev[4], ev[5]) for ev in events if ev[0] == "CANCELLED"]


def depth(e: Engine) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    return e.depth(A, 10)


# ---------------------------------------------------------------------- priority and price


def test_price_time_priority_and_maker_price() -> None:
    e = engine()
    limit(e, "s1", "SELL", 100, 10100)
    limit(e, "s2", "SELL", 100, 10100)
    limit(e, "s0", "SELL", 50, 10000)
    ev = limit(e, "b", "BUY", 220, 10200)
    assert kinds(ev) == ["ACCEPTED", "FILL", "FILL", "FILL"]
    # best price first, then oldest first; always at the resting order's price
    assert fills(ev) == [("s0", "b", 10000, 50), ("s1", "b", 10100, 100), ("s2", "b", 10100, 70)]
    last = event_dict(ev[-1])
    assert last["maker_remaining"] == 30
    assert not last["maker_done"]
    assert last["taker_remaining"] == 0
    assert last["taker_done"]
    assert [event_dict(x)["fill_id"] for x in ev[1:]] == [f"{A}:1", f"{A}:2", f"{A}:3"]
    assert depth(e) == ([], [(10100, 30, 1)])


def test_partial_fill_then_rest() -> None:
    e = engine()
    limit(e, "s", "SELL", 40, 10000)
    ev = limit(e, "b", "BUY", 100, 10050)
    assert fills(ev) == [("s", "b", 10000, 40)]
    assert depth(e) == ([(10050, 60, 1)], [])
    assert e.cancel("b", A, ts=30) == [("CANCELLED", A, "b", "user-b", "USER", 60, 40, 30)]
    assert depth(e) == ([], [])


def test_fractional_quantities() -> None:
    e = engine(qty_scale=6)
    limit(e, "s", "SELL", 2_500_000, 10000)  # 2.5 units
    ev = limit(e, "b", "BUY", 333_333, 10000)  # 0.333333 units
    assert fills(ev) == [("s", "b", 10000, 333_333)]
    assert depth(e) == ([], [(10000, 2_166_667, 1)])


# ---------------------------------------------------------------------- time in force


def test_ioc_remainder_is_cancelled() -> None:
    e = engine()
    limit(e, "s", "SELL", 30, 10000)
    ev = limit(e, "b", "BUY", 100, 10000, tif="IOC")
    assert fills(ev) == [("s", "b", 10000, 30)]
    assert cancelled(ev) == [("b", "IOC_REMAINDER", 70)]
    assert depth(e) == ([], [])


def test_fok_fills_whole_or_nothing() -> None:
    e = engine()
    limit(e, "s1", "SELL", 30, 10000)
    limit(e, "s2", "SELL", 30, 10100)
    ev = limit(e, "f1", "BUY", 61, 10100, tif="FOK")
    assert kinds(ev) == ["ACCEPTED", "CANCELLED"]
    assert cancelled(ev) == [("f1", "FOK_UNFILLABLE", 61)]
    assert depth(e) == ([], [(10000, 30, 1), (10100, 30, 1)])  # untouched
    ev = limit(e, "f2", "BUY", 60, 10100, tif="FOK")
    assert fills(ev) == [("s1", "f2", 10000, 30), ("s2", "f2", 10100, 30)]
    assert depth(e) == ([], [])


def test_day_orders_expire_on_command() -> None:
    e = engine()
    limit(e, "d1", "BUY", 10, 9900, tif="DAY")
    limit(e, "g", "BUY", 10, 9900)
    e.new_order("d2", "u", A, "SELL", "STOP_LOSS", "DAY", 5, stop_price=9000, ts=11)
    limit(e, "d3", "SELL", 10, 10100, tif="DAY")
    ev = e.expire_day(A, ts=99)
    assert ev == [
        ("EXPIRED", A, "d1", "user-d1", 10, 0, 99),
        ("EXPIRED", A, "d2", "u", 5, 0, 99),
        ("EXPIRED", A, "d3", "user-d3", 10, 0, 99),
    ]
    assert depth(e) == ([(9900, 10, 1)], [])
    assert set(e.orders) == {"g"}
    assert e.expire_day(A, ts=100) == []


# ---------------------------------------------------------------------- market orders


def test_market_order_never_trades_beyond_collar() -> None:
    e = engine(collar_bps=500)
    e.reference_price(A, 10000, ts=2)  # 100.00 → buys up to 105.00
    limit(e, "s1", "SELL", 10, 10400)
    limit(e, "s2", "SELL", 10, 10500)
    limit(e, "s3", "SELL", 10, 10600)
    ev = market(e, "m", "BUY", 25)
    assert fills(ev) == [("s1", "m", 10400, 10), ("s2", "m", 10500, 10)]
    assert cancelled(ev) == [("m", "COLLAR", 5)]
    # sell side: a reference fresher than that last trade (105.00) anchors again, down to 95.00
    e.reference_price(A, 10000, ts=3)
    limit(e, "b1", "BUY", 10, 9500)
    limit(e, "b2", "BUY", 10, 9499)
    ev = market(e, "m2", "SELL", 15)
    assert fills(ev) == [("b1", "m2", 9500, 10)]
    assert cancelled(ev) == [("m2", "COLLAR", 5)]


def test_market_collar_follows_the_freshest_of_reference_and_last_trade() -> None:
    """No feed: the listing's reference (100.00) is old news once the venue trades at 94.00.
    A stop-loss sell at 95.00 triggered by that trade sells at the 94.00 bid (anchored on the
    stale reference, its collar floor was 95.00 and it died with nothing sold)."""
    e = engine(collar_bps=500)
    e.reference_price(A, 10000, ts=2)
    ev = e.new_order("st", "u", A, "SELL", "STOP_LOSS", "GTC", 5, stop_price=9500, ts=3)
    assert kinds(ev) == ["ACCEPTED"]
    limit(e, "bid", "BUY", 20, 9400)
    ev = limit(e, "s", "SELL", 1, 9400, user="other")  # prints 94.00: the stop triggers
    assert kinds(ev) == ["ACCEPTED", "FILL", "TRIGGERED", "FILL"]
    assert fills(ev) == [("bid", "s", 9400, 1), ("bid", "st", 9400, 5)]
    assert cancelled(ev) == []
    # A reference published after the trade is the fresher anchor again: 100.00, floor 95.00.
    e.reference_price(A, 10000, ts=5)
    ev = market(e, "m", "SELL", 5)
    assert fills(ev) == []
    assert cancelled(ev) == [("m", "COLLAR", 5)]


def test_market_collar_anchors_on_touch_without_reference() -> None:
    e = engine(collar_bps=100)  # 1%
    limit(e, "s1", "SELL", 10, 10000)
    limit(e, "s2", "SELL", 10, 10100)
    limit(e, "s3", "SELL", 10, 10101)
    ev = market(e, "m", "BUY", 30)
    assert fills(ev) == [("s1", "m", 10000, 10), ("s2", "m", 10100, 10)]
    assert cancelled(ev) == [("m", "COLLAR", 10)]


def test_market_order_without_liquidity() -> None:
    e = engine()
    ev = market(e, "m", "BUY", 5)
    assert kinds(ev) == ["ACCEPTED", "CANCELLED"]
    assert cancelled(ev) == [("m", "NO_LIQUIDITY", 5)]
    e.reference_price(A, 10000, ts=3)
    limit(e, "s", "SELL", 2, 10000)
    ev = market(e, "m2", "BUY", 5, tif="GTC")  # a market order never rests, whatever its tif
    assert cancelled(ev) == [("m2", "NO_LIQUIDITY", 3)]
    ev = market(e, "m3", "SELL", 5, tif="FOK")
    assert cancelled(ev) == [("m3", "FOK_UNFILLABLE", 5)]


def test_notional_market_buy_rounds_down_to_quantity_precision() -> None:
    e = engine(qty_scale=3)  # 0.001 units
    limit(e, "s1", "SELL", 3_000, 1000)  # 3 units at 10.00
    limit(e, "s2", "SELL", 5_000, 1050)  # 5 units at 10.50
    ev = market(e, "n", "BUY", notional=4000)  # 40.00 of cash
    # 3 units at 10.00 = 30.00, then 10.00 / 10.50 = 0.952 units (9.996), 0.004 left: done
    assert fills(ev) == [("s1", "n", 1000, 3_000), ("s2", "n", 1050, 952)]
    last = event_dict(ev[-1])
    assert last["taker_done"] is True
    assert last["event"] == "FILL"
    assert sum(p * q for _, _, p, q in fills(ev)) <= 4000 * 10**3


def test_notional_too_small_and_whole_lots() -> None:
    e = engine(qty_scale=0)  # whole units only
    limit(e, "s", "SELL", 10, 1000)
    ev = market(e, "n", "BUY", notional=999)  # 9.99 cannot buy one unit at 10.00
    assert cancelled(ev) == [("n", "NOTIONAL_TOO_SMALL", 0)]
    ev = market(e, "n2", "BUY", notional=2500)  # buys 2 units, 5.00 left over
    assert fills(ev) == [("s", "n2", 1000, 2)]
    assert event_dict(ev[-1])["taker_done"] is True


# ---------------------------------------------------------------------- stops


def test_stop_loss_triggers_on_last_trade() -> None:
    e = engine()
    limit(e, "b1", "BUY", 10, 9800)
    limit(e, "b2", "BUY", 10, 9700)
    ev = e.new_order("st", "u", A, "SELL", "STOP_LOSS", "GTC", 5, stop_price=9800, ts=11)
    assert kinds(ev) == ["ACCEPTED"]
    limit(e, "b0", "BUY", 10, 9900)
    ev = limit(e, "s", "SELL", 10, 9900)  # trades at 99.00: above the stop, nothing
    assert kinds(ev) == ["ACCEPTED", "FILL"]
    ev = limit(e, "s2", "SELL", 1, 9800)  # trades at 98.00: stop triggers, sells 5 at market
    assert kinds(ev) == ["ACCEPTED", "FILL", "TRIGGERED", "FILL"]
    assert ev[2] == ("TRIGGERED", A, "st", "u", 9800, 9800, 10)
    assert fills(ev)[1] == ("b1", "st", 9800, 5)


def test_stop_limit_triggers_on_reference_price_and_rests() -> None:
    e = engine()
    e.new_order("st", "u", A, "BUY", "STOP_LIMIT", "GTC", 5, price=10200, stop_price=10100, ts=11)
    assert e.reference_price(A, 10000, ts=12) == []
    ev = e.reference_price(A, 10100, ts=13)
    assert ev == [("TRIGGERED", A, "st", "u", 10100, 10100, 13)]
    assert depth(e) == ([(10200, 5, 1)], [])  # no asks: it rests at its limit
    assert e.cancel("st", A, ts=14)[0][4] == "USER"


def test_stop_accepted_beyond_its_trigger_fires_at_once() -> None:
    e = engine()
    e.reference_price(A, 10000, ts=2)
    limit(e, "s", "SELL", 10, 10000)
    ev = e.new_order("st", "u", A, "BUY", "STOP_LOSS", "GTC", 4, stop_price=9900, ts=3)
    assert kinds(ev) == ["ACCEPTED", "TRIGGERED", "FILL"]


def test_stop_cascade() -> None:
    e = engine()
    limit(e, "b1", "BUY", 5, 9900)
    limit(e, "b2", "BUY", 5, 9800)
    limit(e, "b3", "BUY", 5, 9700)
    e.new_order("st1", "u1", A, "SELL", "STOP_LOSS", "GTC", 5, stop_price=9900, ts=3)
    e.new_order("st2", "u2", A, "SELL", "STOP_LOSS", "GTC", 5, stop_price=9800, ts=4)
    ev = limit(e, "s", "SELL", 5, 9900)  # 99.00 → st1 sells into 98.00 → st2 sells into 97.00
    assert kinds(ev) == ["ACCEPTED", "FILL", "TRIGGERED", "FILL", "TRIGGERED", "FILL"]
    assert [f[2] for f in fills(ev)] == [9900, 9800, 9700]
    assert e.cancel("st1", A, ts=9)[0][0] == "CANCEL_REJECTED"


# ---------------------------------------------------------------------- self-trade prevention


@pytest.mark.parametrize(
    ("mode", "expect_fills", "expect_cancels", "resting"),
    [
        ("CANCEL_NEWEST", [], [("t", "SELF_TRADE", 10)], {"own", "other"}),
        (
            "CANCEL_OLDEST",
            [("other", "t", 10100, 10)],
            [("own", "SELF_TRADE", 5)],
            set(),
        ),
        ("CANCEL_BOTH", [], [("own", "SELF_TRADE", 5), ("t", "SELF_TRADE", 10)], {"other"}),
    ],
)
def test_self_trade_prevention(
    mode: str, expect_fills: list[Any], expect_cancels: list[Any], resting: set[str]
) -> None:
    e = engine(stp=mode)
    limit(e, "own", "SELL", 5, 10000, user="alice")
    limit(e, "other", "SELL", 10, 10100, user="bob")
    ev = limit(e, "t", "BUY", 10, 10100, user="alice")
    assert fills(ev) == expect_fills
    assert cancelled(ev) == expect_cancels
    assert set(e.orders) == resting


def test_stp_per_order_override_and_default_cancels_newest() -> None:
    e = engine()
    limit(e, "own", "SELL", 5, 10000, user="alice")
    ev = e.new_order("t", "alice", A, "BUY", "LIMIT", "GTC", 5, 10000, ts=3, stp="CANCEL_OLDEST")
    assert cancelled(ev) == [("own", "SELF_TRADE", 5)]
    assert depth(e) == ([(10000, 5, 1)], [])  # the taker rests once the own order is gone


# ---------------------------------------------------------------------- commands and ids


def test_duplicate_order_id_is_ignored() -> None:
    e = engine()
    assert kinds(limit(e, "o", "BUY", 5, 10000)) == ["ACCEPTED"]
    assert limit(e, "o", "BUY", 5, 10000) == []  # while live
    limit(e, "s", "SELL", 5, 10000)
    assert limit(e, "o", "BUY", 5, 10000) == []  # after it filled
    assert e.new_order("bad", "u", A, "BUY", "LIMIT", "GTC", 5, 10001 * 0, ts=1)[0][0] == "REJECTED"
    assert e.new_order("bad", "u", A, "BUY", "LIMIT", "GTC", 5, 10000, ts=1) == []


def test_dedup_window_is_bounded_and_live_orders_stay_recognised() -> None:
    e = Engine(dedup_window=2)
    e.add_asset(A, 2, 1, 0)
    limit(e, "live", "BUY", 1, 9000)
    for i in range(5):
        limit(e, f"x{i}", "SELL", 1, 9500)
        e.cancel(f"x{i}", A, ts=1)
    assert limit(e, "live", "BUY", 1, 9000) == []  # evicted from the window, still live
    assert kinds(limit(e, "x0", "SELL", 1, 9500)) == ["ACCEPTED"]  # forgotten: new again


def test_cancel_unknown_or_wrong_asset() -> None:
    e = engine()
    e.add_asset("OTHER", 2, 1, 0)
    limit(e, "o", "BUY", 5, 10000)
    assert e.cancel("nope", A, ts=5) == [("CANCEL_REJECTED", A, "nope", "UNKNOWN_ORDER", 5)]
    assert e.cancel("o", "OTHER", ts=5)[0][0] == "CANCEL_REJECTED"
    assert e.cancel("o", A, ts=6)[0][:5] == ("CANCELLED", A, "o", "user-o", "USER")
    assert e.cancel("o", A, ts=7)[0][0] == "CANCEL_REJECTED"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"asset_id": "NOPE"}, "UNKNOWN_ASSET"),
        ({"side": "HOLD"}, "INVALID_SIDE"),
        ({"order_type": "ICEBERG"}, "INVALID_ORDER_TYPE"),
        ({"tif": "GTD"}, "INVALID_TIF"),
        ({"quantity": 0}, "INVALID_QUANTITY"),
        ({"quantity": 7}, "INVALID_QUANTITY"),  # lot size 5
        ({"price": 10003}, "INVALID_PRICE"),  # tick 5
        ({"price": 0}, "INVALID_PRICE"),
        ({"order_type": "MARKET"}, "INVALID_PRICE"),  # a market order with a price
        ({"stop_price": 10000}, "INVALID_STOP_PRICE"),  # a limit order with a stop
        ({"order_type": "STOP_LIMIT"}, "INVALID_STOP_PRICE"),  # a stop order without one
        ({"notional": 100, "quantity": 0}, "INVALID_NOTIONAL"),  # notional on a limit order
        ({"stp": "CANCEL_NOBODY"}, "INVALID_STP"),
    ],
)
def test_rejections(kwargs: dict[str, Any], reason: str) -> None:
    e = engine(lot=5, tick=5)
    args: dict[str, Any] = {
        "order_id": "o",
        "user_id": "u",
        "asset_id": A,
        "side": "BUY",
        "order_type": "LIMIT",
        "tif": "GTC",
        "quantity": 10,
        "price": 10000,
        "stop_price": 0,
        "ts": 5,
    }
    args.update(kwargs)
    ev = e.new_order(**args)
    assert ev == [("REJECTED", args["asset_id"], "o", "u", reason, 5)]
    assert e.orders == {}


def test_notional_rules() -> None:
    e = engine()
    base = ("u", A)
    assert e.new_order("a", *base, "SELL", "MARKET", "IOC", notional=100, ts=1)[0][4] == (
        "INVALID_NOTIONAL"
    )
    assert e.new_order("b", *base, "BUY", "MARKET", "FOK", notional=100, ts=1)[0][4] == (
        "INVALID_NOTIONAL"
    )
    assert e.new_order("c", *base, "BUY", "MARKET", "IOC", 5, notional=100, ts=1)[0][4] == (
        "INVALID_NOTIONAL"
    )


def test_malformed_wire_commands() -> None:
    e = engine()
    assert e.apply({"cmd": "NEW_ORDER", "order_id": "x"})[0][4] == "MALFORMED"
    bad_qty = {
        "cmd": "NEW_ORDER",
        "order_id": "x",
        "user_id": "u",
        "asset_id": A,
        "side": "BUY",
        "order_type": "LIMIT",
        "tif": "GTC",
        "quantity": 1.5,
        "price": 100,
        "ts": 1,
    }
    assert e.apply(bad_qty) == [("REJECTED", A, "x", "u", "MALFORMED", 1)]
    assert e.apply({"cmd": "DANCE", "ts": 3}) == [
        ("REJECTED", None, None, None, "UNKNOWN_COMMAND", 3)
    ]
    assert e.apply([]) == [("REJECTED", None, None, None, "MALFORMED", 0)]  # type: ignore[arg-type]


def test_add_asset_updates_config_but_not_scales_with_open_orders() -> None:
    e = engine()
    limit(e, "o", "BUY", 5, 10000)
    assert e.add_asset(A, 2, 5, 0, 1, 300, "CANCEL_BOTH", ts=3)[0][0] == "ASSET_CONFIGURED"
    assert e.books[A].config.tick_size == 5
    assert e.add_asset(A, 4, 1, 0, ts=4) == [
        ("REJECTED", A, None, None, "SCALE_CHANGE_WITH_OPEN_ORDERS", 4)
    ]
    assert e.add_asset(A, 2, 0, 0, ts=5)[0][4] == "INVALID_CONFIG"
    e.cancel("o", A, ts=6)
    assert e.add_asset(A, 4, 1, 0, ts=7)[0][0] == "ASSET_CONFIGURED"


def test_events_need_no_clock_and_snapshot_round_trips() -> None:
    e = engine()
    limit(e, "a", "BUY", 5, 9900, tif="DAY", ts=123)
    e.new_order("s", "u", A, "SELL", "STOP_LIMIT", "GTC", 5, 9500, 9600, ts=124)
    state = dump_engine(e)
    e2 = load_engine(state)
    assert dump_engine(e2) == state
    assert limit(e, "x", "SELL", 7, 9900, ts=200) == limit(e2, "x", "SELL", 7, 9900, ts=200)
    assert dump_engine(e) == dump_engine(e2)


def test_depth_aggregates_levels() -> None:
    e = engine()
    limit(e, "b1", "BUY", 5, 9900)
    limit(e, "b2", "BUY", 7, 9900)
    limit(e, "b3", "BUY", 1, 9800)
    limit(e, "s1", "SELL", 2, 10100)
    assert e.depth(A, 1) == ([(9900, 12, 2)], [(10100, 2, 1)])
    assert e.depth(A, 5) == ([(9900, 12, 2), (9800, 1, 1)], [(10100, 2, 1)])
    e.cancel("b1", A, ts=3)
    assert e.depth(A, 5)[0] == [(9900, 7, 1), (9800, 1, 1)]
