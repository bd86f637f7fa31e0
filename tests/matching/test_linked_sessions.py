"""Scenarios of linked orders (bracket / OCO / OTO) and of the extended session, in the core.

The reference model in ``test_matching_properties.py`` checks the same rules on random flows;
these spell out the cases a reader looks for.
"""

from __future__ import annotations

import json
from typing import Any

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import Event


def engine() -> Engine:
    e = Engine()
    e.add_asset("A", 2, 1, 0)
    return e


def order(oid: str, uid: str, side: str, qty: int, price: int, **extra: Any) -> dict[str, Any]:
    return {
        "cmd": "NEW_ORDER",
        "order_id": oid,
        "user_id": uid,
        "asset_id": "A",
        "side": side,
        "order_type": "LIMIT",
        "tif": "GTC",
        "quantity": qty,
        "price": price,
        "ts": 1,
        **extra,
    }


BRACKET_LEGS = [
    {"order_id": "tp", "order_type": "LIMIT", "tif": "GTC", "price": 11000},
    {"order_id": "sl", "order_type": "STOP_LOSS", "tif": "GTC", "stop_price": 9500},
]


def names(events: list[Event]) -> list[tuple[str, str]]:
    return [(ev[0], ev[2]) for ev in events]


def test_a_bracket_waits_then_its_legs_cover_what_the_entry_filled() -> None:
    e = engine()
    ev = e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS))
    assert [(x[0], x[2], x[7]) for x in ev] == [
        ("ACCEPTED", "p", 10),
        ("ACCEPTED", "tp", 0),  # waiting: nothing to sell yet
        ("ACCEPTED", "sl", 0),
    ]
    book = e.books["A"]
    assert set(book.pending) == {"tp", "sl"}
    assert book.asks.best_price() == 0  # the take-profit is not in the book
    ev = e.apply(order("s", "v", "SELL", 4, 10000))
    assert [x for x in ev if x[0] == "RESIZED"] == [
        ("RESIZED", "A", "tp", "u", 4, 4, "ACTIVATED", 1),
        ("RESIZED", "A", "sl", "u", 4, 4, "ACTIVATED", 1),
    ]
    assert book.asks.best_price() == 11000
    ev = e.apply(order("s2", "v", "SELL", 6, 10000))
    assert [(x[2], x[4]) for x in ev if x[0] == "RESIZED"] == [("tp", 10), ("sl", 10)]
    assert book.asks.levels[-11000].volume == 10


def test_a_take_profit_fill_shrinks_the_stop_then_ends_it() -> None:
    e = engine()
    e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS))
    e.apply(order("s", "v", "SELL", 10, 10000))
    ev = e.apply(order("b", "w", "BUY", 4, 11000))
    assert ("RESIZED", "A", "sl", "u", 6, 6, "OCO", 1) in ev
    ev = e.apply(order("b2", "w", "BUY", 6, 11000))
    assert ("CANCELLED", "A", "sl", "u", "OCO", 6, 0, 1) in ev
    assert not e.orders
    assert not e.books["A"].stop_count


def test_a_stop_that_triggers_ends_the_entry_first() -> None:
    """The entry filled 4 of 10 and still bids at 100: the stop at 95 triggers on a reference
    price; the entry's 6 are cancelled before the stop sells (never into its own entry)."""
    e = engine()
    e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS))
    e.apply(order("s", "v", "SELL", 4, 10000))
    e.apply(order("bid", "w", "BUY", 4, 9400))
    ev = e.apply({"cmd": "REFERENCE_PRICE", "asset_id": "A", "price": 9400, "ts": 2})
    assert names(ev)[:3] == [("TRIGGERED", "sl"), ("CANCELLED", "p"), ("FILL", "sl")]
    assert ev[1][4] == "OCO"
    assert ("CANCELLED", "A", "tp", "u", "OCO", 4, 0, 2) in ev


def test_an_entry_that_ends_unfilled_takes_its_legs() -> None:
    e = engine()
    e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS))
    ev = e.apply({"cmd": "CANCEL", "order_id": "p", "asset_id": "A", "ts": 3})
    assert [(x[2], x[4]) for x in ev] == [("p", "USER"), ("tp", "PARENT"), ("sl", "PARENT")]
    assert not e.books["A"].pending


def test_an_oco_shares_its_quantity_and_one_cancel_ends_both() -> None:
    e = engine()
    legs = [{"order_id": "sl", "order_type": "STOP_LOSS", "tif": "GTC", "stop_price": 9000}]
    ev = e.apply(order("tp", "u", "SELL", 5, 11000, order_class="OCO", legs=legs))
    assert [(x[0], x[2], x[7]) for x in ev] == [("ACCEPTED", "tp", 5), ("ACCEPTED", "sl", 5)]
    ev = e.apply({"cmd": "CANCEL", "order_id": "sl", "asset_id": "A", "ts": 3})
    assert [(x[2], x[4], x[5]) for x in ev] == [("sl", "USER", 5), ("tp", "OCO", 5)]
    assert not e.orders


def test_bad_legs_reject_the_order_and_its_legs() -> None:
    e = engine()
    bad = [dict(BRACKET_LEGS[0], price=9900), BRACKET_LEGS[1]]  # a take-profit under the entry
    ev = e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=bad))
    assert [(x[0], x[2], x[4]) for x in ev] == [
        ("REJECTED", "p", "INVALID_LEGS"),
        ("REJECTED", "tp", "INVALID_LEGS"),
        ("REJECTED", "sl", "INVALID_LEGS"),
    ]


def test_a_linked_order_is_not_replaced() -> None:
    e = engine()
    e.apply(order("p", "u", "BUY", 10, 10000, order_class="BRACKET", legs=BRACKET_LEGS))
    ev = e.apply(
        {
            "cmd": "REPLACE", "order_id": "p", "asset_id": "A", "replace_id": "r",
            "quantity": 5, "price": 10000, "tif": "GTC", "ts": 4,
        }
    )  # fmt: skip
    assert ev[0][0] == "REPLACE_REJECTED"
    assert ev[0][5] == "LINKED"


def test_a_regular_gtc_order_does_not_trade_after_the_close() -> None:
    """The known bug: a regular GTC bid resting from the day traded against an after-hours
    order. After SESSION EXTENDED it waits out of the book; an extended-hours ask finds only
    extended-hours bids; at SESSION REGULAR the bid comes back and trades."""
    e = engine()
    e.apply(order("day-bid", "u", "BUY", 5, 10000))
    e.apply(order("ext-bid", "x", "BUY", 1, 9900, extended_hours=True))
    assert e.apply({"cmd": "SESSION", "asset_id": "A", "session": "EXTENDED", "ts": 5}) == []
    book = e.books["A"]
    assert book.bids.best_price() == 9900
    ev = e.apply(order("ext-ask", "v", "SELL", 3, 9900, extended_hours=True))
    fills = [x for x in ev if x[0] == "FILL"]
    assert [(f[4], f[10]) for f in fills] == [("ext-bid", 1)]  # not the regular bid at 100
    regular = e.apply(order("late", "w", "SELL", 1, 9000))  # a regular order waits too
    assert names(regular) == [("ACCEPTED", "late")]
    market = e.apply({**order("mkt", "w", "SELL", 1, 0), "order_type": "MARKET", "price": None})
    assert [x[4] for x in market if x[0] == "CANCELLED"] == ["SESSION_CLOSED"]
    state = json.loads(json.dumps(dump_engine(e)))
    assert load_engine(state).books["A"].parked.keys() == book.parked.keys()
    ev = e.apply({"cmd": "SESSION", "asset_id": "A", "session": "REGULAR", "ts": 6})
    fills = [x for x in ev if x[0] == "FILL"]
    # the day bid comes back as if arriving now: it takes the after-hours ask's 2 left at
    # 99 (the maker's price), then the regular ask that waited meets what is left of it
    assert [(f[4], f[5], f[9], f[10]) for f in fills] == [
        ("ext-ask", "day-bid", 9900, 2),
        ("day-bid", "late", 10000, 1),
    ]
