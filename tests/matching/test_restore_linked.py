"""Linked groups rebuilt from the record (NEW_ORDER ``restored`` with ``order_class``) and the
reconciler's RESYNC, in the core (docs/ARCHITECTURE.md, "Losing Redis").

The twin test: engine A lives through a history; engine B is rebuilt from what the record
holds after it (the entry's fills, each exit's quantity and fills); from then on both get the
same commands and must answer with the same events, fill ids included.
"""

from __future__ import annotations

import json
from typing import Any

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import Event


def engine(fill_seq: int = 0) -> Engine:
    e = Engine()
    e.apply(
        {"cmd": "ADD_ASSET", "asset_id": "A", "price_scale": 2, "tick_size": 1, "qty_scale": 0,
         "fill_seq": fill_seq, "ts": 1}
    )  # fmt: skip
    return e


def order(oid: str, uid: str, side: str, qty: int, price: int, **extra: Any) -> dict[str, Any]:
    return {
        "cmd": "NEW_ORDER", "order_id": oid, "user_id": uid, "asset_id": "A", "side": side,
        "order_type": "LIMIT", "tif": "GTC", "quantity": qty, "price": price, "ts": 1, **extra,
    }  # fmt: skip


BRACKET_LEGS = [
    {"order_id": "tp", "order_type": "LIMIT", "tif": "GTC", "price": 11000},
    {"order_id": "sl", "order_type": "STOP_LOSS", "tif": "GTC", "stop_price": 9500},
]
BRACKET = order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS)
OCO_LEGS = [{"order_id": "sl", "order_type": "STOP_LOSS", "tif": "GTC", "stop_price": 9000}]
OCO = order("tp", "u", "SELL", 5, 11000, order_class="OCO", legs=OCO_LEGS)


def restored(
    first: dict[str, Any],
    filled: int,
    legs: list[tuple[int, int, bool]],
    *,
    ended: bool = False,
) -> dict[str, Any]:
    """The record's command for a group: the original NEW_ORDER with the order's fills and
    each leg's (quantity, filled, ended) as PostgreSQL has them."""
    cmd = dict(first, restored=True, filled=filled)
    if ended:
        cmd["ended"] = True
    cmd["legs"] = [
        dict(spec, quantity=q, filled=f, ended=e)
        for spec, (q, f, e) in zip(first["legs"], legs, strict=True)
    ]
    return cmd


def twin(a: Engine, cmd: dict[str, Any]) -> Engine:
    """B: an empty engine rebuilt with ``cmd``, its fills numbered on from A's."""
    b = engine(fill_seq=a.books["A"].trade_seq)
    b.apply({"cmd": "REFERENCE_PRICE", "asset_id": "A", "price": a.books["A"].mark, "ts": 1})
    assert b.apply(cmd) == [], "a consistent record restores without events"
    return b


def same_future(a: Engine, b: Engine, commands: list[dict[str, Any]]) -> list[Event]:
    out: list[Event] = []
    for cmd in commands:
        ea, eb = a.apply(dict(cmd)), b.apply(dict(cmd))
        assert ea == eb, (cmd, ea, eb)
        out += ea
    assert json.dumps(dump_engine(a)["books"]["A"]["groups"]) == json.dumps(
        dump_engine(b)["books"]["A"]["groups"]
    )
    return out


def test_a_bracket_with_a_partly_filled_entry_behaves_as_before_after_a_rebuild() -> None:
    """Entry 10 at 100, filled 3: the exits are active for 3. Rebuilt, a buyer at 110 takes
    the take-profit: the stop is cancelled (OCO), the entry's 7 too, exactly as in A."""
    a = engine()
    a.apply(BRACKET)
    a.apply(order("s", "v", "SELL", 3, 10000))
    b = twin(a, restored(BRACKET, 3, [(3, 0, False), (3, 0, False)]))
    assert b.orders["p"].remaining == 7
    assert (b.orders["tp"].quantity, b.orders["sl"].remaining) == (3, 3)
    assert b.books["A"].asks.levels[-11000].volume == 3
    ev = same_future(a, b, [order("w1", "w", "BUY", 3, 11000, tif="IOC")])
    assert ("CANCELLED", "A", "sl", "u", "OCO", 3, 0, 1) in ev
    assert ("CANCELLED", "A", "p", "u", "OCO", 7, 3, 1) in ev
    assert not b.orders
    assert not b.books["A"].pending


def test_a_bracket_rebuilt_while_waiting_activates_on_its_first_fill() -> None:
    a = engine()
    a.apply(BRACKET)
    # PostgreSQL shows a waiting leg with the entry's quantity: it is not active yet.
    b = twin(a, restored(BRACKET, 0, [(10, 0, False), (10, 0, False)]))
    assert set(b.books["A"].pending) == {"tp", "sl"}
    ev = same_future(a, b, [order("s", "v", "SELL", 4, 10000)])
    assert ("RESIZED", "A", "sl", "u", 4, 4, "ACTIVATED", 1) in ev
    # And its stop triggers: the entry's remainder ends first, the take-profit after.
    ev = same_future(
        a, b,
        [order("bid", "x", "BUY", 4, 9400),
         {"cmd": "REFERENCE_PRICE", "asset_id": "A", "price": 9400, "ts": 2}],
    )  # fmt: skip
    assert ("CANCELLED", "A", "p", "u", "OCO", 6, 4, 2) in ev
    assert ("CANCELLED", "A", "tp", "u", "OCO", 4, 0, 2) in ev


def test_exits_of_a_filled_entry_keep_their_pairing() -> None:
    """The entry executed (final in the record); the take-profit sold 4 of 10, the stop shrank
    to 6. Rebuilt, the rest of the take-profit fills and the stop ends, releasing nothing
    twice (no event for an order already final)."""
    a = engine()
    a.apply(BRACKET)
    a.apply(order("s", "v", "SELL", 10, 10000))
    a.apply(order("w1", "w", "BUY", 4, 11000, tif="IOC"))
    assert (a.orders["sl"].quantity, a.orders["tp"].filled) == (6, 4)
    b = twin(a, restored(BRACKET, 10, [(10, 4, False), (6, 0, False)], ended=True))
    ev = same_future(a, b, [order("w2", "w", "BUY", 6, 11000, tif="IOC")])
    assert ("CANCELLED", "A", "sl", "u", "OCO", 6, 0, 1) in ev
    assert all(x[2] != "p" for x in ev)


def test_an_oco_rebuilt_resting_triggers_and_cancels_its_sibling() -> None:
    a = engine()
    a.apply(OCO)
    b = twin(a, restored(OCO, 0, [(5, 0, False)]))
    assert b.books["A"].asks.levels[-11000].volume == 5
    ev = same_future(
        a, b,
        [order("bid", "x", "BUY", 5, 8800),
         {"cmd": "REFERENCE_PRICE", "asset_id": "A", "price": 8900, "ts": 2}],
    )  # fmt: skip
    assert [x[0] for x in ev if x[2] == "sl"][:2] == ["TRIGGERED", "FILL"]
    assert ("CANCELLED", "A", "tp", "u", "OCO", 5, 0, 2) in ev
    assert not b.orders


def test_an_oco_with_one_leg_partly_filled_keeps_them_in_lockstep() -> None:
    a = engine()
    a.apply(OCO)
    a.apply(order("b1", "x", "BUY", 2, 11000, tif="IOC"))
    b = twin(a, restored(OCO, 2, [(3, 0, False)]))
    assert (b.orders["tp"].remaining, b.orders["sl"].remaining) == (3, 3)
    same_future(a, b, [order("b2", "x", "BUY", 3, 11000, tif="IOC")])
    assert not b.orders


def test_what_the_record_settled_and_the_legs_missed_is_passed_on() -> None:
    """The entry's fill of 3 was settled, the legs' RESIZED was lost with Redis: the record
    still shows them at the entry's 10. The rebuild sizes them to 3 (RESIZED ACTIVATED)."""
    e = engine()
    e.apply({"cmd": "REFERENCE_PRICE", "asset_id": "A", "price": 10000, "ts": 1})
    ev = e.apply(restored(BRACKET, 3, [(10, 0, False), (10, 0, False)]))
    assert ev == [
        ("RESIZED", "A", "tp", "u", 3, 3, "ACTIVATED", 1),
        ("RESIZED", "A", "sl", "u", 3, 3, "ACTIVATED", 1),
    ]
    # A lost shrink: the take-profit sold 2 of 5, the stop still shows 5. It goes to 3.
    e2 = engine()
    ev = e2.apply(restored(OCO, 2, [(5, 0, False)]))
    assert ev == [("RESIZED", "A", "sl", "u", 3, 3, "OCO", 1)]


def test_a_group_the_record_shows_over_is_ended_as_the_engine_would() -> None:
    # The stop was cancelled while waiting (its CANCELLED settled, the rest lost).
    e = engine()
    ev = e.apply(restored(BRACKET, 0, [(10, 0, False), (10, 0, True)]))
    assert [(x[0], x[2], x[4]) for x in ev] == [
        ("CANCELLED", "p", "OCO"),
        ("CANCELLED", "tp", "OCO"),
    ]
    assert not e.orders
    assert not e.books["A"].pending
    # The entry ended unfilled: its waiting legs go (PARENT).
    e = engine()
    ev = e.apply(restored(BRACKET, 0, [(10, 0, False), (10, 0, False)], ended=True))
    assert [(x[2], x[4]) for x in ev] == [("tp", "PARENT"), ("sl", "PARENT")]
    # An exit sold while the entry was still open: the entry's remainder ends.
    e = engine()
    ev = e.apply(restored(BRACKET, 3, [(3, 1, False), (2, 0, False)]))
    assert ev == [("CANCELLED", "A", "p", "u", "OCO", 7, 3, 1)]
    assert (e.orders["tp"].remaining, e.orders["sl"].remaining) == (2, 2)
    # The take-profit executed: the stop goes.
    e = engine()
    ev = e.apply(restored(BRACKET, 10, [(10, 10, True), (10, 0, False)], ended=True))
    assert ev == [("CANCELLED", "A", "sl", "u", "OCO", 10, 0, 1)]
    assert not e.orders


def test_a_group_already_live_is_a_repeat_and_a_restored_group_snapshots() -> None:
    e = engine()
    cmd = restored(BRACKET, 3, [(3, 0, False), (3, 0, False)])
    e.apply(cmd)
    assert e.apply(dict(cmd)) == []
    again = load_engine(dump_engine(e))
    assert dump_engine(again) == dump_engine(e)
    ev = again.apply(order("w1", "w", "BUY", 3, 11000, tif="IOC"))
    assert ("CANCELLED", "A", "sl", "u", "OCO", 3, 0, 1) in ev


def test_resync_takes_the_record_view_in_place() -> None:
    e = engine()
    e.apply(order("b1", "u", "BUY", 10, 9900))
    e.apply(order("b2", "u2", "BUY", 1, 9900))
    # PostgreSQL settled 4 the engine does not know of: the order keeps its place, for 6.
    assert e.apply({"cmd": "RESYNC", "order_id": "b1", "asset_id": "A", "filled": 4,
                    "remaining": 6, "ts": 2}) == []  # fmt: skip
    o = e.orders["b1"]
    assert (o.quantity, o.filled, o.remaining) == (10, 4, 6)
    assert e.books["A"].bids.levels[9900].volume == 7
    assert list(e.books["A"].bids.levels[9900].orders) == ["b1", "b2"]
    # Remaining 0: it ends quietly (the record holds it final).
    assert e.apply({"cmd": "RESYNC", "order_id": "b1", "asset_id": "A", "filled": 4,
                    "remaining": 0, "ts": 3}) == []  # fmt: skip
    assert "b1" not in e.orders
    assert e.books["A"].bids.levels[9900].volume == 1
    # Not live: nothing.
    assert e.apply({"cmd": "RESYNC", "order_id": "b1", "asset_id": "A", "filled": 0,
                    "remaining": 3, "ts": 4}) == []  # fmt: skip


def test_resync_of_a_linked_entry_ends_it_without_its_active_exits() -> None:
    e = engine()
    e.apply(BRACKET)
    e.apply(order("s", "v", "SELL", 3, 10000))
    ev = e.apply({"cmd": "RESYNC", "order_id": "p", "asset_id": "A", "filled": 3,
                  "remaining": 0, "ts": 2})  # fmt: skip
    assert ev == []
    assert (e.orders["tp"].remaining, e.orders["sl"].remaining) == (3, 3)
    # A waiting bracket's entry ended: its exits go with it (PARENT).
    e = engine()
    e.apply(BRACKET)
    ev = e.apply({"cmd": "RESYNC", "order_id": "p", "asset_id": "A", "filled": 0,
                  "remaining": 0, "ts": 2})  # fmt: skip
    assert [(x[2], x[4]) for x in ev] == [("tp", "PARENT"), ("sl", "PARENT")]
