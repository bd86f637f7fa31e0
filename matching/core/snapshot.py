"""Engine state as plain JSON-able data, and back.

The snapshot holds exactly what decides future events: every resting order in time priority,
the waiting stops, the DAY order sequence, each book's prices and fill counter, the engine's
order sequence and its window of seen order ids. Dead stop-heap entries (cancelled stops not
yet popped) are left out: they never influence matching; so are stale ones (a trailing stop's
entries from before its stop moved). Version 2 adds each order's trail and water mark;
version 3 each order's extended-hours flag, the book's session (``extended``, the ``parked``
orders), the legs waiting for their entry (``pending``) and the linked groups (``groups``:
kind, entry id, leg ids, active, the fills already passed on); version 4 the stock splits each
book has applied (``splits``: split count, numerator, denominator), which decide how a late
stamped command catches up (``core/split.py``); version 5 each order's filled quantity just
before its book's latest split (``split_filled``: a late REPLACE rounds its filled part and the
rest apart); version 6 those of every split the book keeps, by split count (``split_filled``:
``[split_count, [[order_id, filled], ...]]``, a REPLACE more than one split late rounds at
each). Versions 1 to 5 still load (no splits, no pre-split fills, or the latest split's only).
"""

from __future__ import annotations

from collections import deque
from heapq import heapify
from typing import Any

from .book import AssetConfig, Book, BookSide
from .constants import BUY, TRAILING_STOP
from .engine import _CLASSES, _SIDES, _STPS, _TIFS, _TYPES, Engine
from .order import Group, Level, Order

VERSION = 6
READABLE = frozenset({1, 2, 3, 4, 5, 6})


def _order_record(o: Order) -> list[Any]:
    return [
        o.order_id,
        o.user_id,
        o.side,
        o.order_type,
        o.tif,
        o.quantity,
        o.remaining,
        o.filled,
        o.price,
        o.stop_price,
        o.notional,
        o.stp,
        o.seq,
        o.ts,
        o.trail,
        o.trail_bps,
        o.water,
        o.ext,
    ]


def _order_from(rec: list[Any], asset_id: str) -> Order:
    (oid, uid, side, otype, tif, qty, rem, filled, price, stop, notional, stp, seq, ts) = rec[:14]
    o = Order(
        oid,
        uid,
        asset_id,
        _SIDES[side],
        _TYPES[otype],
        _TIFS[tif],
        qty,
        price,
        stop,
        notional,
        _STPS[stp],
        seq,
        ts,
    )
    o.remaining = rem
    o.filled = filled
    if len(rec) > 14:
        o.trail, o.trail_bps, o.water = rec[14:17]
    if len(rec) > 17:
        o.ext = bool(rec[17])
    return o


def _groups(book: Book) -> list[list[Any]]:
    """The book's linked groups, by their first member's acceptance."""
    found: dict[int, Group] = {}
    members: list[Order] = list(book.pending.values()) + list(book.parked.values())
    for side in (book.bids, book.asks):
        for lvl in side.levels.values():
            members.extend(lvl.orders.values())
    members += [e[2] for e in book.buy_stops + book.sell_stops if e[2].remaining]
    for o in members:
        g = o.group
        if g is not None:
            found[id(g)] = g
    rows = []
    for g in found.values():
        first = g.parent if g.parent is not None else g.legs[0]
        rows.append(
            (
                first.seq,
                [
                    g.kind,
                    None if g.parent is None else g.parent.order_id,
                    [b.order_id for b in g.legs],
                    g.active,
                    g.pfilled,
                    list(g.lfilled),
                ],
            )
        )
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows]


def _side_record(side: BookSide) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for k in reversed(side.keys):
        rows.append([k * side.sign, [_order_record(o) for o in side.levels[k].orders.values()]])
    return rows


def dump_engine(engine: Engine) -> dict[str, Any]:
    """The engine's state as plain data (dicts, lists, str, int)."""
    books: dict[str, Any] = {}
    for asset_id, book in engine.books.items():
        cfg = book.config
        stops = [e[2] for e in book.buy_stops if e[2].remaining and e[0] == e[2].stop_price]
        stops += [e[2] for e in book.sell_stops if e[2].remaining and -e[0] == e[2].stop_price]
        stops.sort(key=lambda o: o.seq)
        books[asset_id] = {
            "config": [
                cfg.price_scale,
                cfg.tick_size,
                cfg.qty_scale,
                cfg.lot_size,
                cfg.collar_bps,
                cfg.stp,
            ],
            "last_price": book.last_price,
            "ref_price": book.ref_price,
            "mark": book.mark,
            "trade_seq": book.trade_seq,
            "bids": _side_record(book.bids),
            "asks": _side_record(book.asks),
            "stops": [_order_record(o) for o in stops],
            "day": list(book.day),
            "ext_day": sorted(book.ext_day),
            "extended": book.extended,
            "parked": [_order_record(o) for o in book.parked.values()],
            "pending": [_order_record(o) for o in book.pending.values()],
            "groups": _groups(book),
            "splits": [list(x) for x in engine.splits.get(asset_id, ())],
            "split_filled": [
                [seq, [[k, v] for k, v in sorted(filled.items())]]
                for seq, filled in sorted(engine.split_filled.get(asset_id, {}).items())
            ],
        }
    return {
        "version": VERSION,
        "seq": engine.seq,
        "dedup_window": engine.dedup_window,
        "seen": list(engine.seen_fifo),
        "books": books,
    }


def load_engine(data: dict[str, Any]) -> Engine:
    """Rebuild an engine from :func:`dump_engine` output."""
    if data.get("version") not in READABLE:
        raise ValueError(f"unsupported snapshot version {data.get('version')!r}")
    engine = Engine(dedup_window=data["dedup_window"])
    engine.seq = data["seq"]
    engine.seen_fifo = deque(data["seen"])
    engine.seen = set(engine.seen_fifo)
    orders = engine.orders
    for asset_id, b in data["books"].items():
        ps, tick, qs, lot, collar, stp = b["config"]
        book = Book(asset_id, AssetConfig(ps, tick, qs, lot, collar, _STPS[stp]), orders)
        book.last_price = b["last_price"]
        book.ref_price = b["ref_price"]
        book.mark = b["mark"]
        book.trade_seq = b["trade_seq"]
        for side, rows in ((book.bids, b["bids"]), (book.asks, b["asks"])):
            for price, recs in rows:
                k = price * side.sign
                lvl = Level()
                for rec in recs:
                    o = _order_from(rec, asset_id)
                    lvl.orders[o.order_id] = o
                    lvl.volume += o.remaining
                    orders[o.order_id] = o
                side.levels[k] = lvl
            side.keys = sorted(side.levels)
        for rec in b["stops"]:
            o = _order_from(rec, asset_id)
            orders[o.order_id] = o
            if o.side is BUY:
                book.buy_stops.append((o.stop_price, o.seq, o))
            else:
                book.sell_stops.append((-o.stop_price, o.seq, o))
            book.stop_count += 1
            if o.order_type is TRAILING_STOP:
                book._track(o)
        for heap in (book.buy_stops, book.sell_stops):
            heapify(heap)
        book.extended = bool(b.get("extended", False))
        for rec in b.get("parked", ()):
            o = _order_from(rec, asset_id)
            orders[o.order_id] = o
            book.parked[o.order_id] = o
        for rec in b.get("pending", ()):
            o = _order_from(rec, asset_id)
            book.pending[o.order_id] = o
        for kind, parent, leg_ids, active, pfilled, lfilled in b.get("groups", ()):
            find = book.pending.get
            legs = [find(i) or orders[i] for i in leg_ids]
            g = Group(_CLASSES[kind], None if parent is None else orders[parent], legs, active)
            g.pfilled = pfilled
            g.lfilled = list(lfilled)
            for o in ([g.parent] if g.parent is not None else []) + legs:
                o.group = g
        for oid in b["day"]:
            book.day[oid] = orders[oid]
        book.ext_day = set(b.get("ext_day", ()))  # absent in snapshots taken before it existed
        if b.get("splits"):
            engine.splits[asset_id] = [(seq, n, d) for seq, n, d in b["splits"]]
        if b.get("split_filled") and data["version"] >= 6:
            engine.split_filled[asset_id] = {
                seq: {oid: f for oid, f in filled} for seq, filled in b["split_filled"]
            }
        elif b.get("split_filled") and b.get("splits"):  # version 5: the latest split's only
            latest = b["splits"][-1][0]
            engine.split_filled[asset_id] = {latest: {oid: f for oid, f in b["split_filled"]}}
        engine.books[asset_id] = book
    return engine
