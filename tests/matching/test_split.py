"""The SPLIT command in the pure core: every live order adjusted, time priority kept."""

from __future__ import annotations

import json

from matching.core import Engine, dump_engine, load_engine
from matching.core.split import split_price, split_quantity
from matching.wire import encode_command, split


def engine(lot: int = 1, tick: int = 1) -> Engine:
    e = Engine()
    e.add_asset("X", 2, tick, 0, lot)
    return e


def adjusted(events: list[tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    return {str(ev[2]): ev[5:11] for ev in events if ev[0] == "SPLIT_ADJUSTED"}


def test_two_for_one_doubles_quantities_halves_prices_and_the_new_price_trades() -> None:
    e = engine()
    e.new_order("buy", "u1", "X", "BUY", "LIMIT", "GTC", 10, 10000)
    e.new_order("stop", "u1", "X", "SELL", "STOP_LOSS", "GTC", 10, 0, 9000)
    e.reference_price("X", 10050)
    ev = e.split("X", "s1", 2, 1, ts=5)
    assert ev[0] == ("SPLIT_APPLIED", "X", "s1", 2, 1, 5)
    # (quantity, remaining, filled, price, stop, trail)
    assert adjusted(ev) == {"buy": (20, 20, 0, 5000, 0, 0), "stop": (20, 20, 0, 0, 4500, 0)}
    book = e.book("X")
    assert book is not None
    assert (book.ref_price, book.mark) == (5025, 5025)
    assert e.depth("X") == ([(5000, 20, 1)], [])
    # A seller at the new price fills the adjusted buy completely.
    out = e.new_order("s", "u2", "X", "SELL", "LIMIT", "GTC", 20, 5000)
    fills = [x for x in out if x[0] == "FILL"]
    assert [(f[9], f[10], f[13]) for f in fills] == [(5000, 20, True)]
    # The stop triggers at its new stop price, not at the old one.
    assert not [x for x in e.reference_price("X", 4501) if x[0] == "TRIGGERED"]
    assert [x[0] for x in e.reference_price("X", 4500)][:1] == ["TRIGGERED"]


def test_a_repeated_split_is_ignored() -> None:
    e = engine()
    e.new_order("buy", "u1", "X", "BUY", "LIMIT", "GTC", 10, 10000)
    assert e.split("X", "s1", 2, 1)
    assert e.split("X", "s1", 2, 1) == []
    assert e.depth("X") == ([(5000, 20, 1)], [])


def test_rounding_limits_in_the_customers_favour_and_stops_away_from_the_market() -> None:
    # 3-for-2: 100.01 / 1.5 = 66.6733...
    assert split_price(10001, 3, 2, 1, up=False) == 6667  # a buy limit, a sell stop: down
    assert split_price(10001, 3, 2, 1, up=True) == 6668  # a sell limit, a buy stop: up
    assert split_price(1, 10, 1, 1, up=False) == 1  # never below one tick
    assert split_price(123, 1, 10, 1, up=True) == 1230  # a reverse split: exact
    assert split_quantity(7, 3, 2, 1) == 10  # 10.5 rounded down to the lot
    assert split_quantity(7, 1, 10, 1) == 0


def test_three_for_two_keeps_the_book_uncrossed_and_time_priority() -> None:
    e = engine()
    e.new_order("b1", "u1", "X", "BUY", "LIMIT", "GTC", 3, 10000)
    e.new_order("b2", "u2", "X", "BUY", "LIMIT", "GTC", 3, 10001)  # better price, later
    e.new_order("a1", "u3", "X", "SELL", "LIMIT", "GTC", 3, 10002)
    ev = e.split("X", "s", 3, 2)
    # 100.00 -> 66.666 -> 66.66 and 100.01 -> 66.6733 -> 66.67 (buys down); 100.02 -> 66.68 (up)
    got = adjusted(ev)
    assert got["b1"][3] == 6666
    assert got["b2"][3] == 6667
    assert got["a1"][3] == 6668
    assert [g[0] for g in got.values()] == [4, 4, 4]  # 4.5 rounded down
    bids, asks = e.depth("X")
    assert bids[0][0] < asks[0][0]
    # Two old levels that round to one new price keep price-then-time priority.
    e2 = engine()
    e2.new_order("old", "u1", "X", "BUY", "LIMIT", "GTC", 2, 10000)
    e2.new_order("new", "u2", "X", "BUY", "LIMIT", "GTC", 2, 10001)  # better price
    e2.split("X", "s", 2, 1)  # 50.00 and 50.005 -> 50.00
    assert e2.depth("X")[0] == [(5000, 8, 2)]
    fills = [x for x in e2.new_order("sell", "u3", "X", "SELL", "LIMIT", "IOC", 4, 5000)]
    assert [f[4] for f in fills if f[0] == "FILL"] == ["new"]


def test_reverse_split_cancels_what_rounds_to_nothing() -> None:
    e = engine()
    e.new_order("big", "u1", "X", "BUY", "LIMIT", "GTC", 25, 1000)
    e.new_order("tiny", "u2", "X", "SELL", "LIMIT", "GTC", 5, 2000)
    ev = e.split("X", "r", 1, 10)
    assert ("CANCELLED", "X", "tiny", "u2", "SPLIT", 5, 0, 0) in ev
    assert adjusted(ev) == {"big": (2, 2, 0, 10000, 0, 0)}
    assert e.depth("X") == ([(10000, 2, 1)], [])
    assert "tiny" not in e.orders


def test_partly_filled_trailing_parked_and_linked_orders() -> None:
    e = engine()
    e.reference_price("X", 10000)
    e.new_order("t", "u1", "X", "SELL", "TRAILING_STOP", "GTC", 10, 0, 0, trail_amount=200)
    e.new_order("p", "u1", "X", "BUY", "LIMIT", "GTC", 10, 9900)
    e.new_order("sell", "u2", "X", "SELL", "LIMIT", "IOC", 4, 9900)  # p: 4 filled, 6 left
    legs = [
        {"order_id": "tp", "order_type": "LIMIT", "tif": "GTC", "price": 11000},
        {"order_id": "sl", "order_type": "STOP_LOSS", "tif": "GTC", "stop_price": 8000},
    ]
    e.new_order(
        "entry", "u3", "X", "BUY", "LIMIT", "GTC", 6, 9800, order_class="BRACKET", legs=legs
    )
    e.session("X", "EXTENDED")
    e.new_order("late", "u4", "X", "BUY", "LIMIT", "GTC", 3, 9700)  # parked
    ev = e.split("X", "s", 2, 1)
    got = adjusted(ev)
    assert got["t"] == (20, 20, 0, 0, 4900, 100)  # stop 98.00 -> 49.00, trail 2.00 -> 1.00
    assert got["p"] == (20, 12, 8, 4950, 0, 0)
    assert got["entry"] == (12, 12, 0, 4900, 0, 0)
    assert got["tp"] == (0, 0, 0, 5500, 0, 0)
    assert got["sl"] == (0, 0, 0, 0, 4000, 0)
    assert got["late"] == (6, 6, 0, 4850, 0, 0)
    book = e.book("X")
    assert book is not None
    assert e.orders["t"].water == 5000
    e.session("X", "REGULAR")
    # The entry fills at its new price and its legs come in for the new shares.
    out = e.new_order("x", "u5", "X", "SELL", "LIMIT", "IOC", 24, 4900)  # p first: better
    assert ("RESIZED", "X", "tp", "u3", 12, 12, "ACTIVATED", 0) in out


def test_snapshot_round_trip_and_replay_after_a_split() -> None:
    cmds = [
        {"cmd": "ADD_ASSET", "asset_id": "X", "price_scale": 2, "tick_size": 1, "qty_scale": 0,
         "lot_size": 1, "ts": 1},
        {"cmd": "NEW_ORDER", "order_id": "a", "user_id": "u1", "asset_id": "X", "side": "BUY",
         "order_type": "LIMIT", "tif": "GTC", "quantity": 10, "price": 10000, "ts": 2},
        dict(split("X", "s1", numerator=2, denominator=1, ts=3)),
        {"cmd": "NEW_ORDER", "order_id": "b", "user_id": "u2", "asset_id": "X", "side": "SELL",
         "order_type": "LIMIT", "tif": "GTC", "quantity": 30, "price": 5000, "ts": 4},
    ]  # fmt: skip
    json.loads(encode_command(cmds[2]))
    straight = Engine()
    expected = [straight.apply(c) for c in cmds]
    first = Engine()
    got = [first.apply(c) for c in cmds[:3]]
    second = load_engine(json.loads(json.dumps(dump_engine(first))))
    assert second.apply(cmds[2]) == []  # the split id survives the snapshot: not applied twice
    got += [second.apply(c) for c in cmds[3:]]
    assert got == expected
    assert dump_engine(second) == dump_engine(straight)


def test_invalid_splits_are_rejected() -> None:
    e = engine()
    assert e.apply({"cmd": "SPLIT", "asset_id": "X", "split_id": "a", "numerator": 1,
                    "denominator": 1, "ts": 1})[0][4] == "INVALID_RATIO"  # fmt: skip
    assert e.apply({"cmd": "SPLIT", "asset_id": "X", "split_id": "b", "numerator": 0,
                    "denominator": 2, "ts": 1})[0][4] == "INVALID_RATIO"  # fmt: skip
    assert e.apply({"cmd": "SPLIT", "asset_id": "Y", "split_id": "c", "numerator": 2,
                    "denominator": 1, "ts": 1})[0][4] == "UNKNOWN_ASSET"  # fmt: skip
    assert e.apply({"cmd": "SPLIT", "asset_id": "X", "numerator": 2, "ts": 1})[0][4] == "MALFORMED"
