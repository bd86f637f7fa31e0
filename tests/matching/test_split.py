"""The SPLIT command in the pure core: every live order adjusted, time priority kept."""

from __future__ import annotations

import json

from matching.core import Engine, dump_engine, load_engine
from matching.core.split import split_price, split_quantity
from matching.wire import encode_command, new_order, replace, split


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


# ---------------------------------------------------------------------- commands in flight


def test_a_new_order_planned_before_a_split_arriving_after_it_catches_up() -> None:
    e = engine()
    e.reference_price("X", 10000)
    e.apply(split_cmd("s1", 2, 1, 1))
    # Planned at split count 0 (100.00 x 10): it arrives as if it had rested through the split.
    ev = e.apply(order_cmd("late", "BUY", "LIMIT", 10, price=8001, split_seq=0))
    assert ev[0][:2] == ("ACCEPTED", "X")
    assert (ev[0][7], ev[0][9]) == (20, 4000)  # quantity doubled, the buy's limit rounded down
    assert e.depth("X") == ([(4000, 20, 1)], [])
    # Stamped with the current count: taken as it is; without a stamp: as before stamps.
    e.apply(order_cmd("now", "BUY", "LIMIT", 10, price=4100, split_seq=1))
    e.apply(order_cmd("old", "BUY", "LIMIT", 10, price=4200))
    assert e.depth("X") == ([(4200, 10, 1), (4100, 10, 1), (4000, 20, 1)], [])
    # A sell's limit rounds up: 100.01 / 2 = 50.005 -> 50.01.
    ev = e.apply(order_cmd("sell", "SELL", "LIMIT", 3, price=10001, split_seq=0))
    assert (ev[0][7], ev[0][9]) == (6, 5001)


def test_a_stop_priced_before_a_split_arriving_after_it_does_not_trigger() -> None:
    e = engine()
    e.reference_price("X", 10000)
    e.apply(split_cmd("s1", 2, 1, 1))  # the mark: 50.00
    ev = e.apply(order_cmd("stop", "SELL", "STOP_LOSS", 10, stop=9001, split_seq=0))
    assert [x[0] for x in ev] == ["ACCEPTED"]  # 90.01 -> 45.00 (a sell stop: down), waiting
    assert (ev[0][7], ev[0][10]) == (20, 4500)
    # Without the stamp it would have triggered at once (90.01 above a 50.00 mark).
    unstamped = engine()
    unstamped.reference_price("X", 10000)
    unstamped.apply(split_cmd("s1", 2, 1, 1))
    ev = unstamped.apply(order_cmd("stop", "SELL", "STOP_LOSS", 10, stop=9001))
    assert "TRIGGERED" in [x[0] for x in ev]
    # A buy stop rounds up, a trailing amount down, a trailing buy's cap down.
    ev = e.apply(order_cmd("bstop", "BUY", "STOP_LOSS", 1, stop=12001, split_seq=0))
    assert ev[0][10] == 6001
    ev = e.apply(order_cmd("trail", "SELL", "TRAILING_STOP", 1, trail_amount=301, split_seq=0))
    assert e.orders["trail"].trail == 150


def test_a_replace_planned_before_a_split_arriving_after_it_catches_up() -> None:
    e = engine()
    e.reference_price("X", 10000)
    e.apply(order_cmd("b", "BUY", "LIMIT", 10, price=9000, split_seq=0))
    e.apply(split_cmd("s1", 2, 1, 1))
    assert e.depth("X") == ([(4500, 20, 1)], [])
    # The user asked for 12 at 85.01 before the split: 24 at 42.50.
    ev = e.apply(replace_cmd("b", "r1", 12, 8501, split_seq=0))
    assert ev[0][0] == "REPLACED"
    assert (ev[0][5], ev[0][6], ev[0][7]) == (24, 24, 4250)
    assert e.depth("X") == ([(4250, 24, 1)], [])
    # Stamped after the split: as it is.
    ev = e.apply(replace_cmd("b", "r2", 30, 4000, split_seq=1))
    assert (ev[0][5], ev[0][7]) == (30, 4000)


def test_a_late_replace_of_a_partly_filled_order_rounds_as_one_that_rested() -> None:
    """3-for-2, 1 of 4 filled before the split: a REPLACE to 4 at 29.99 that missed the
    split ends exactly where the same REPLACE applied before the split ends (filled 1 and the
    rest 3 rounded apart: 1 + 4 = 5, 4 remaining at 19.99), not at 4 x 1.5 = 6 rounded once,
    one share more than the split gives the order (and than its hold or shares cover)."""
    for lot in (1, 10):
        results = []
        for late in (True, False):
            e = engine(lot=lot)
            e.apply(order_cmd("b", "BUY", "LIMIT", 4 * lot, price=3000, split_seq=0))
            e.apply(order_cmd("s", "SELL", "LIMIT", 1 * lot, price=3000, split_seq=0))
            if not late:
                e.apply(replace_cmd("b", "r1", 4 * lot, 2999, split_seq=0))
            e.apply(split_cmd("s1", 3, 2, 1))
            if late:
                ev = e.apply(replace_cmd("b", "r1", 4 * lot, 2999, split_seq=0))
                assert ev[0][0] == "REPLACED"
            o = e.orders["b"]
            results.append((o.quantity, o.filled, o.remaining, o.price))
        assert results[0] == results[1] == (5 * lot, 1 * lot, 4 * lot, 1999)
    # No record of the order before the split: the total rounded once.
    e = engine()
    e.apply(order_cmd("b", "BUY", "LIMIT", 4, price=3000, split_seq=0))
    e.apply(order_cmd("s", "SELL", "LIMIT", 1, price=3000, split_seq=0))
    e.apply(split_cmd("s1", 3, 2, 1))
    e.split_filled.clear()  # as after a rebuild from PostgreSQL
    e.apply(replace_cmd("b", "r1", 4, 2999, split_seq=0))
    assert (e.orders["b"].quantity, e.orders["b"].remaining) == (6, 5)


def test_a_replace_two_splits_late_rounds_at_each_as_an_order_that_rested() -> None:
    """Two 3-for-2 splits, the order filled 1 of 4 before the first and 1 more between them:
    a REPLACE to 4 at 29.99 planned before both, arriving after both, ends exactly where the
    same REPLACE applied before the first ends: at each split the filled part as it stood then
    and the rest rounded apart (1 + 4 = 5; then 2 filled: 3 + 4 = 7, 4 remaining at 13.32),
    not 4 x 2.25 = 9 rounded once (6 remaining: more than the split gives the order, its hold
    or the seller's shares)."""
    want = {1: (7, 3, 4, 1332), 10: (70, 30, 40, 1332)}
    for lot in (1, 10):
        results = []
        for late in (True, False):
            e = engine(lot=lot)
            e.apply(order_cmd("b", "BUY", "LIMIT", 4 * lot, price=3000, split_seq=0))
            e.apply(order_cmd("s", "SELL", "LIMIT", 1 * lot, price=3000, split_seq=0))
            if not late:
                e.apply(replace_cmd("b", "r1", 4 * lot, 2999, split_seq=0))
            e.apply(split_cmd("s1", 3, 2, 1))
            e.apply(order_cmd("s2", "SELL", "LIMIT", 1 * lot, price=1999, split_seq=1))
            e.apply(split_cmd("s2x", 3, 2, 2))
            if late:
                ev = e.apply(replace_cmd("b", "r1", 4 * lot, 2999, split_seq=0))
                assert ev[0][0] == "REPLACED"
            o = e.orders["b"]
            results.append((o.quantity, o.filled, o.remaining, o.price))
        assert results[0] == results[1] == want[lot], lot


def test_a_version_5_snapshot_keeps_the_latest_splits_fills() -> None:
    """A version 5 snapshot has the filled quantities before the latest split only: they
    load as that split's (a REPLACE one split late rounds as before), the older unknown."""
    e = engine()
    e.apply(order_cmd("b", "BUY", "LIMIT", 4, price=3000, split_seq=0))
    e.apply(order_cmd("s", "SELL", "LIMIT", 1, price=3000, split_seq=0))
    e.apply(split_cmd("s1", 3, 2, 1))
    state = dump_engine(e)
    assert state["version"] == 6
    assert state["books"]["X"]["split_filled"] == [[1, [["b", 1]]]]
    old = json.loads(json.dumps(state))
    old["version"] = 5
    old["books"]["X"]["split_filled"] = [["b", 1]]
    loaded = load_engine(old)
    assert loaded.split_filled == {"X": {1: {"b": 1}}}
    ev = loaded.apply(replace_cmd("b", "r1", 4, 2999, split_seq=0))
    assert ev[0][0] == "REPLACED"
    assert (loaded.orders["b"].quantity, loaded.orders["b"].remaining) == (5, 4)


def test_a_command_two_splits_late_catches_up_with_both_in_order() -> None:
    e = engine()
    e.apply(split_cmd("s1", 3, 2, 1))
    e.apply(split_cmd("s2", 1, 10, 2))
    ev = e.apply(order_cmd("o", "BUY", "LIMIT", 20, price=10001, split_seq=0))
    # 20 x 1.5 = 30, / 10 = 3; 100.01 / 1.5 -> 66.67 (down), x 10 -> 666.70
    assert (ev[0][7], ev[0][9]) == (
        3,
        split_price(split_price(10001, 3, 2, 1, False), 1, 10, 1, False),
    )
    assert ev[0][9] == 66670
    ev = e.apply(order_cmd("o2", "BUY", "LIMIT", 20, price=10001, split_seq=1))
    assert (ev[0][7], ev[0][9]) == (2, 100010)  # only the second split


def test_a_bad_stamp_is_malformed() -> None:
    e = engine()
    ev = e.apply(order_cmd("o", "BUY", "LIMIT", 1, price=100, split_seq=-1))
    assert ev[0][0] == "REJECTED"
    assert ev[0][4] == "MALFORMED"
    ev = e.apply({**replace_cmd("o", "r", 2, 100, split_seq=0), "split_seq": "1"})
    assert ev[0][0] == "REPLACE_REJECTED"
    assert ev[0][5] == "MALFORMED"


def test_replay_with_late_stamped_commands_is_byte_identical() -> None:
    cmds: list[dict[str, object]] = [
        {"cmd": "REFERENCE_PRICE", "asset_id": "X", "price": 10000, "ts": 1},
        order_cmd("a", "BUY", "LIMIT", 10, price=9000, split_seq=0),
        order_cmd("b", "SELL", "LIMIT", 5, price=11001, split_seq=0),
        split_cmd("s1", 2, 1, 1),
        order_cmd("late", "BUY", "LIMIT", 7, price=9501, split_seq=0),
        order_cmd("stop", "SELL", "STOP_LOSS", 4, stop=9001, split_seq=0),
        replace_cmd("a", "r1", 12, 8001, split_seq=0),
        split_cmd("s2", 3, 2, 2),
        order_cmd("later", "SELL", "LIMIT", 9, price=5001, split_seq=1),
        replace_cmd("late", "r2", 10, 9001, split_seq=0),
        order_cmd("x", "SELL", "LIMIT", 30, price=3000, split_seq=2),
    ]
    straight = Engine()
    straight.add_asset("X", 2, 1, 0, 1)
    expected = [json.dumps(straight.apply(c)) for c in cmds]
    for cut in range(len(cmds) + 1):
        first = Engine()
        first.add_asset("X", 2, 1, 0, 1)
        got = [json.dumps(first.apply(c)) for c in cmds[:cut]]
        state = json.loads(json.dumps(dump_engine(first)))
        second = load_engine(state)
        got += [json.dumps(second.apply(c)) for c in cmds[cut:]]
        assert got == expected, cut
        assert dump_engine(second) == dump_engine(straight)
    assert dump_engine(straight)["books"]["X"]["splits"] == [[1, 2, 1], [2, 3, 2]]
    filled = dump_engine(straight)["books"]["X"]["split_filled"]
    # Per split, by count: the orders live at it, with their filled quantity just before it.
    assert filled == [
        [1, [["a", 0], ["b", 0]]],
        [2, [["a", 0], ["b", 0], ["late", 0], ["stop", 0]]],
    ]


def split_cmd(sid: str, n: int, d: int, seq: int) -> dict[str, object]:
    return dict(split("X", sid, numerator=n, denominator=d, ts=1, split_seq=seq))


def order_cmd(
    oid: str,
    side: str,
    otype: str,
    quantity: int,
    *,
    price: int | None = None,
    stop: int | None = None,
    trail_amount: int | None = None,
    split_seq: int | None = None,
) -> dict[str, object]:
    return dict(
        new_order(
            oid, "u1" if side == "BUY" else "u2", "X", side, otype, "GTC", ts=2,
            quantity=quantity, price=price, stop_price=stop, trail_amount=trail_amount,
            split_seq=split_seq,
        )
    )  # fmt: skip


def replace_cmd(
    oid: str, rid: str, quantity: int, price: int, *, split_seq: int | None = None
) -> dict[str, object]:
    return dict(
        replace(oid, "X", rid, quantity=quantity, tif="GTC", ts=3, price=price, split_seq=split_seq)
    )
