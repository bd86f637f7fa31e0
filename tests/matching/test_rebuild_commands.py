"""The core's part in rebuilding a shard from the record (docs/ARCHITECTURE.md, "Losing
Redis"): restored orders, the fill-number floor, and EXPIRE_DAY's `before`."""

from __future__ import annotations

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import event_dict

A = "XYZ"


def engine(fill_seq: int = 0) -> Engine:
    e = Engine()
    e.apply(
        {"cmd": "ADD_ASSET", "asset_id": A, "price_scale": 2, "tick_size": 1, "qty_scale": 0,
         "fill_seq": fill_seq, "ts": 1}
    )  # fmt: skip
    return e


def restored(
    oid: str, side: str, qty: int, price: int, filled: int, ts: int = 5
) -> dict[str, object]:
    return {
        "cmd": "NEW_ORDER", "order_id": oid, "user_id": f"u-{oid}", "asset_id": A,
        "side": side, "order_type": "LIMIT", "tif": "GTC", "quantity": qty, "price": price,
        "ts": ts, "restored": True, "filled": filled,
    }  # fmt: skip


def test_a_restored_order_rests_without_accepted_and_keeps_what_was_filled() -> None:
    e = engine()
    assert e.apply(restored("b1", "BUY", 10, 9900, filled=4)) == []  # no ACCEPTED again
    order = e.orders["b1"]
    assert (order.quantity, order.filled, order.remaining) == (10, 4, 6)
    events = e.apply(
        {"cmd": "NEW_ORDER", "order_id": "s1", "user_id": "u-s1", "asset_id": A, "side": "SELL",
         "order_type": "LIMIT", "tif": "GTC", "quantity": 6, "price": 9900, "ts": 6}
    )  # fmt: skip
    fill = next(event_dict(ev) for ev in events if ev[0] == "FILL")
    assert fill["maker_order_id"] == "b1"
    assert fill["maker_remaining"] == 0
    assert fill["maker_done"] is True


def test_fill_ids_continue_above_the_settled_ones() -> None:
    e = engine(fill_seq=41)
    e.apply(restored("b1", "BUY", 1, 9900, filled=0))
    events = e.apply(
        {"cmd": "NEW_ORDER", "order_id": "s1", "user_id": "u-s1", "asset_id": A, "side": "SELL",
         "order_type": "MARKET", "tif": "IOC", "quantity": 1, "ts": 6}
    )  # fmt: skip
    assert [event_dict(ev)["fill_id"] for ev in events if ev[0] == "FILL"] == [f"{A}:42"]
    # The floor survives a snapshot, and never lowers a book's own count.
    again = load_engine(dump_engine(e))
    again.apply({"cmd": "ADD_ASSET", "asset_id": A, "price_scale": 2, "tick_size": 1,
                 "qty_scale": 0, "fill_seq": 3, "ts": 7})  # fmt: skip
    assert again.books[A].trade_seq == 42


def test_restored_is_the_one_repeat_not_ignored_for_a_finished_id() -> None:
    e = engine()
    e.apply(restored("b1", "BUY", 1, 9900, filled=0))
    assert e.apply(restored("b1", "BUY", 1, 9900, filled=0)) == []  # live: a repeat
    e.apply({"cmd": "CANCEL", "order_id": "b1", "asset_id": A, "ts": 8})
    plain = {
        k: v
        for k, v in restored("b1", "BUY", 1, 9900, 0).items()
        if k not in ("restored", "filled")
    }
    assert e.apply(plain) == []  # a finished id: a plain NEW_ORDER is a repeat
    assert e.apply(restored("b1", "BUY", 1, 9900, filled=0)) == []
    assert "b1" in e.orders  # the record said it is open: back in the book


def test_a_restored_filled_quantity_must_leave_something_to_fill() -> None:
    e = engine()
    events = e.apply(restored("b1", "BUY", 5, 9900, filled=5))
    assert [ev[0] for ev in events] == ["REJECTED"]
    assert "b1" not in e.orders


def test_expire_day_before_a_close_spares_orders_placed_after_it() -> None:
    e = engine()
    for oid, ts in (("early", 100), ("late", 300)):
        e.apply(
            {"cmd": "NEW_ORDER", "order_id": oid, "user_id": "u", "asset_id": A, "side": "BUY",
             "order_type": "LIMIT", "tif": "DAY", "quantity": 1, "price": 9900, "ts": ts}
        )  # fmt: skip
    events = e.apply({"cmd": "EXPIRE_DAY", "asset_id": A, "before": 200, "ts": 400})
    assert [(ev[0], ev[2]) for ev in events] == [("EXPIRED", "early")]
    assert e.apply({"cmd": "EXPIRE_DAY", "asset_id": A, "before": 200, "ts": 401}) == []
    assert set(e.orders) == {"late"}
