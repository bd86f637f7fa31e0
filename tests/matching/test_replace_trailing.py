"""Scenario tests of REPLACE and TRAILING_STOP in the pure core, events spelled out."""

from __future__ import annotations

import json

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import Event, event_dict

A = "XYZ"


def engine() -> Engine:
    e = Engine()
    e.add_asset(A, 2, 1, 0, 1, 500, "CANCEL_NEWEST", ts=1)
    return e


def limit(e: Engine, oid: str, side: str, qty: int, price: int) -> list[Event]:
    return e.new_order(oid, f"u-{oid}", A, side, "LIMIT", "GTC", qty, price, ts=2)


def makers(events: list[Event]) -> list[tuple[str, int]]:
    return [(event_dict(ev)["maker_order_id"], ev[10]) for ev in events if ev[0] == "FILL"]


def test_quantity_down_at_the_same_price_keeps_the_place_in_the_queue() -> None:
    e = engine()
    limit(e, "a", "SELL", 10, 100)
    limit(e, "b", "SELL", 10, 100)
    [done] = e.replace("a", A, "r1", 6, 100, 0, "GTC", ts=3)
    assert event_dict(done) | {"ts": 0} == {
        "event": "REPLACED", "asset_id": A, "order_id": "a", "user_id": "u-a",
        "replace_id": "r1", "quantity": 6, "remaining": 6, "price": 100, "stop_price": None,
        "tif": "GTC", "kept_priority": True, "ts": 0,
    }  # fmt: skip
    assert e.depth(A)[1] == [(100, 16, 2)]
    assert makers(limit(e, "c", "BUY", 8, 100)) == [("a", 6), ("b", 2)]


def test_any_other_change_takes_a_new_place_and_may_trade_at_once() -> None:
    e = engine()
    limit(e, "a", "SELL", 10, 100)
    limit(e, "b", "SELL", 10, 100)
    up = e.replace("a", A, "r1", 12, 100, 0, "GTC", ts=3)
    assert event_dict(up[0])["kept_priority"] is False
    same_quantity_new_tif = e.replace("b", A, "r2", 10, 100, 0, "DAY", ts=4)
    assert event_dict(same_quantity_new_tif[0])["kept_priority"] is False
    assert makers(limit(e, "c", "BUY", 13, 100)) == [("a", 12), ("b", 1)]
    # A bid re-priced through the ask trades as it is replaced.
    limit(e, "d", "BUY", 5, 90)
    crossed = e.replace("d", A, "r3", 5, 100, 0, "GTC", ts=5)
    assert [ev[0] for ev in crossed] == ["REPLACED", "FILL"]
    assert makers(crossed) == [("b", 5)]


def test_a_partly_filled_order_is_replaced_for_what_is_left() -> None:
    e = engine()
    limit(e, "a", "SELL", 10, 100)
    limit(e, "b", "BUY", 4, 100)
    [rejected] = e.replace("a", A, "r1", 4, 100, 0, "GTC", ts=3)
    assert event_dict(rejected)["reason"] == "INVALID_QUANTITY"
    assert event_dict(rejected)["remaining"] == 6  # unchanged
    [done] = e.replace("a", A, "r2", 7, 100, 0, "GTC", ts=4)
    assert (event_dict(done)["remaining"], event_dict(done)["kept_priority"]) == (3, True)


def test_a_replace_of_an_order_no_longer_live_changes_nothing_and_repeats_are_ignored() -> None:
    e = engine()
    limit(e, "a", "SELL", 5, 100)
    limit(e, "b", "BUY", 5, 100)
    [rejected] = e.replace("a", A, "r1", 4, 100, 0, "GTC", ts=3)
    assert (rejected[0], event_dict(rejected)["reason"]) == ("REPLACE_REJECTED", "UNKNOWN_ORDER")
    limit(e, "c", "SELL", 5, 100)
    assert e.replace("c", A, "r1", 4, 100, 0, "GTC", ts=4) == []  # r1 was seen: ignored
    assert e.depth(A)[1] == [(100, 5, 1)]


def test_a_trailing_sell_ratchets_up_with_the_mark_and_triggers_on_the_fall() -> None:
    e = engine()
    e.reference_price(A, 1000, ts=2)
    [accepted] = e.new_order(
        "t", "u-t", A, "SELL", "TRAILING_STOP", "GTC", 3, ts=3, trail_amount=50
    )
    assert event_dict(accepted)["stop_price"] == 950
    moved = e.reference_price(A, 1100, ts=4)
    assert [(ev[0], event_dict(ev)["stop_price"]) for ev in moved] == [("STOP_MOVED", 1050)]
    assert e.reference_price(A, 1060, ts=5) == []  # a dip less than the trail: no move, no trigger
    limit(e, "bid", "BUY", 5, 1040)
    fell = e.reference_price(A, 1050, ts=6)
    assert [ev[0] for ev in fell] == ["TRIGGERED", "FILL"]
    assert makers(fell) == [("bid", 3)]


def test_a_trailing_buy_by_percentage_follows_the_fall_and_lowers_its_cap() -> None:
    e = engine()
    e.reference_price(A, 1000, ts=2)
    e.new_order("t", "u-t", A, "BUY", "TRAILING_STOP", "GTC", 1, 1071, ts=3, trail_bps=200)
    moved = e.reference_price(A, 900, ts=4)
    assert [(event_dict(ev)["stop_price"], event_dict(ev)["price"]) for ev in moved] == [
        (918, 963)  # 900 x 1.02; cap 918 x 1.05 rounded down
    ]


def test_trailing_state_survives_a_snapshot_and_version_1_snapshots_load() -> None:
    e = engine()
    e.reference_price(A, 1000, ts=2)
    e.new_order("t", "u-t", A, "SELL", "TRAILING_STOP", "GTC", 3, ts=3, trail_bps=100)
    e.reference_price(A, 1200, ts=4)
    copy = load_engine(json.loads(json.dumps(dump_engine(e))))
    assert copy.reference_price(A, 1300, ts=5) == e.reference_price(A, 1300, ts=5)
    assert dump_engine(copy) == dump_engine(e)

    old = engine()
    limit(old, "a", "SELL", 5, 100)
    v1 = dump_engine(old)
    v1["version"] = 1
    for rows in (v1["books"][A]["asks"],):
        for _, recs in rows:
            for rec in recs:
                del rec[14:]
    assert load_engine(v1).depth(A)[1] == [(100, 5, 1)]
