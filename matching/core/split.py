"""A stock split applied to one asset's book (the ``SPLIT`` command), and its rounding rules.

A split of ``numerator``-for-``denominator`` (ratio r = n / d; 2-for-1 doubles quantities,
1-for-10 divides them by ten) adjusts every live order of the asset where it stands: resting
orders, waiting stops and trailing stops, linked legs (live or waiting for their entry) and
orders parked for the regular session. Integers only; the rules (also used by PostgreSQL's
side, ``models/corporate_actions.py``, so both compute the same terms):

- **Quantities** (``remaining``, ``filled``, hence ``quantity = filled + remaining``) are
  multiplied by r and rounded DOWN to the lot (``split_quantity``): an order never grows past
  what the split gives. An order whose remaining quantity rounds to nothing is cancelled first
  (``CANCELLED`` reason ``SPLIT``, its quantities as they stood; a linked order's group goes
  with it, as at a cancel).
- **Prices** are divided by r and rounded to the tick (``split_price``), never below one
  tick. **Limit prices** (a limit, a stop-limit's limit, a trailing buy's cap) round **in the
  customer's favour**: a buy's DOWN (it never pays more per share than agreed, and its hold,
  quantity x price, never grows), a sell's UP (it never receives less); the two sides round
  apart, so a book that was not crossed stays uncrossed (a bid below an ask stays below it).
  **Stop prices** round **away from the market**: a sell stop's DOWN, a buy stop's UP, so the
  rounding alone never brings a stop closer to triggering. A reverse split (r < 1) multiplies
  prices by an integer: exact.
- **Trail amounts** are divided by r, rounded down to the tick (at least one tick); trails in
  basis points are unchanged. **Water marks** and the book's **last trade, reference and mark**
  are divided by r and rounded down (at least 1): the collar's anchor and the stop trigger move
  with the shares, so the market does not jump.
- **Time priority is kept**: within a side, the new levels are filled from the old ones best
  price first, each level's orders in their order; two old levels that round to one new price
  keep price-then-time priority from before the split. Stops keep their acceptance order.
- Linked groups' fill counters (what was passed on to the legs) scale by the same rule as
  ``filled``, so a group passes nothing on twice and nothing is lost.

The command is idempotent: its ``split_id`` is remembered with the order ids (the engine's
duplicate window), so a resent ``SPLIT`` is ignored with no event.

**Commands in flight** (``catch_up``): a ``SPLIT`` carries the asset's new split count
(``split_seq``, PostgreSQL's ``assets.split_seq``), and the engine keeps, per asset, the count
and ratio of every split it applied (in the snapshot too). A ``NEW_ORDER`` or ``REPLACE``
stamped with an older count (planned before the split, arriving after it) is adjusted by the
splits it missed, in order, with exactly these rules (quantities down to the lot, limit prices
in the customer's favour, stops away from the market, trail amounts down; notionals and
trails in basis points are unchanged), before it is validated: the order arrives as if it had
rested through the split. A REPLACE's ``quantity`` is its new total; it is rounded as the
order would have been had the REPLACE arrived before the splits it missed (``split_total``, per
split, oldest first): at each, its filled part (the order's filled quantity just before that
split, which ``apply_split`` returns and the engine keeps per split, by split count) and the
rest apart, each down to the lot. Rounded once instead, a non-whole ratio could give the order
one lot more than the split gives its holder (3 shares filled of 4 asked, 3-for-2: 6 at once,
4 + 1 apart), more than the hold or the shares the customer has. A REPLACE of an order the
engine has no pre-split record of (a book rebuilt from PostgreSQL; a split without a count)
has its total rounded once at that split.
A command without a stamp (older journals, restored orders) is taken as it is.
"""

from __future__ import annotations

from heapq import heapify

from .book import Book, BookSide
from .constants import BUY, SPLIT_ADJUSTED, SPLIT_APPLIED, SPLIT_CANCELLED, TRAILING_STOP
from .events import Event
from .order import Level, Order


def split_quantity(quantity: int, numerator: int, denominator: int, lot: int) -> int:
    """``quantity`` x n / d, rounded down to the lot."""
    return quantity * numerator // denominator // lot * lot


def split_total(quantity: int, filled: int, numerator: int, denominator: int, lot: int) -> int:
    """A REPLACE's new total ``quantity`` at one split it missed, rounded as an order resting
    through the split rounds (``apply_split``): its filled part (``filled``: the order's filled
    quantity before the split) and the rest apart, each down to the lot. ``filled`` unknown
    (< 0) or above ``quantity``: the total as one quantity."""
    if 0 <= filled <= quantity:
        rest = split_quantity(quantity - filled, numerator, denominator, lot)
        return split_quantity(filled, numerator, denominator, lot) + rest
    return split_quantity(quantity, numerator, denominator, lot)


def split_price(price: int, numerator: int, denominator: int, tick: int, up: bool) -> int:
    """``price`` / (n / d) on the tick grid, rounded up or down, at least one tick; 0 stays 0
    (absent). A limit rounds up for a sell (``up = side is SELL``), a stop up for a buy."""
    if not price:
        return 0
    step = numerator * tick
    ticks = -(-price * denominator // step) if up else price * denominator // step
    return max(ticks, 1) * tick


def split_trail(trail: int, numerator: int, denominator: int, tick: int) -> int:
    """A trail amount / (n / d), rounded down to the tick, at least one tick (0: none)."""
    if not trail:
        return 0
    return max(trail * denominator // (numerator * tick), 1) * tick


def split_mark(mark: int, numerator: int, denominator: int) -> int:
    """A mark (last trade, reference, water mark) / (n / d), rounded down, at least 1."""
    if not mark:
        return 0
    return max(mark * denominator // numerator, 1)


def catch_up(
    missed: list[tuple[int, int]],
    buy: bool,
    lot: int,
    tick: int,
    quantity: int,
    price: int,
    stop_price: int,
    trail: int,
    filled: list[int] | None = None,
) -> tuple[int, int, int, int]:
    """A command's (quantity, limit price, stop price, trail amount) after the splits it
    missed (``missed``: their (numerator, denominator), oldest first), by the rules a resting
    order gets at a SPLIT (the module's docstring). Values that are not positive stay as they
    are (absent, or invalid: the engine rejects them as it would have). ``filled``: a REPLACE's
    order's filled quantity just before each split it missed, in ``missed``'s order
    (``split_total``; -1 or absent: unknown)."""
    for i, (n, d) in enumerate(missed):
        if quantity > 0:
            known = filled[i] if filled is not None and i < len(filled) else -1
            quantity = split_total(quantity, known, n, d, lot)
        if price > 0:
            price = split_price(price, n, d, tick, not buy)
        if stop_price > 0:
            stop_price = split_price(stop_price, n, d, tick, buy)
        if trail > 0:
            trail = split_trail(trail, n, d, tick)
    return quantity, price, stop_price, trail


def _live_stops(book: Book) -> list[Order]:
    """The waiting stops, each once (their heaps' current entries), by acceptance."""
    out: dict[str, Order] = {}
    for heap, sign in ((book.buy_stops, 1), (book.sell_stops, -1)):
        for key, _seq, o in heap:
            if o.remaining and key * sign == o.stop_price:
                out[o.order_id] = o
    return sorted(out.values(), key=lambda o: o.seq)


def _resting(side: BookSide) -> list[Order]:
    """A side's orders, best price first, each level in time priority."""
    out: list[Order] = []
    for k in reversed(side.keys):
        out.extend(side.levels[k].orders.values())
    return out


def apply_split(
    book: Book, split_id: str, numerator: int, denominator: int, ev: list[Event], ts: int
) -> dict[str, int]:
    """Adjust every live order of ``book`` for a numerator-for-denominator split (see the
    module's rules): ``SPLIT_APPLIED``, the ``CANCELLED`` (reason ``SPLIT``) of orders left
    with nothing, then one ``SPLIT_ADJUSTED`` per order adjusted, by acceptance. Returns each
    adjusted order's filled quantity before the split (a late REPLACE's ``split_total``)."""
    cfg = book.config
    lot, tick = cfg.lot_size, cfg.tick_size
    n, d = numerator, denominator
    asset = book.asset_id
    bids, asks = _resting(book.bids), _resting(book.asks)
    stops = _live_stops(book)
    everyone = bids + asks + stops + list(book.parked.values()) + list(book.pending.values())
    ev.append((SPLIT_APPLIED, asset, split_id, n, d, ts))
    before = len(ev)
    # 1. Orders the split leaves nothing of: cancelled as they stand (with their group).
    for o in sorted(everyone, key=lambda o: o.seq):
        gone = not split_quantity(o.remaining, n, d, lot)
        if o.remaining and gone and (o.order_id in book.orders or o.order_id in book.pending):
            book.cancel(o, ev, ts, SPLIT_CANCELLED)
    if len(ev) != before:
        everyone = [o for o in everyone if o.remaining or o.order_id in book.pending]
        bids = [o for o in bids if o.remaining]
        asks = [o for o in asks if o.remaining]
        stops = [o for o in stops if o.remaining]
        book.ext_day = {oid for oid in book.ext_day if oid in book.day}
    # 2. Every order's terms.
    filled_before: dict[str, int] = {}
    for o in everyone:
        filled_before[o.order_id] = o.filled
        o.remaining = split_quantity(o.remaining, n, d, lot)
        o.filled = split_quantity(o.filled, n, d, lot)
        o.quantity = o.filled + o.remaining
        buy = o.side is BUY
        o.price = split_price(o.price, n, d, tick, not buy)
        o.stop_price = split_price(o.stop_price, n, d, tick, buy)
        o.trail = split_trail(o.trail, n, d, tick)
        if o.water:
            o.water = split_mark(o.water, n, d)
        g = o.group
        if g is not None and g.parent is o:
            g.pfilled = split_quantity(g.pfilled, n, d, lot)
        if g is not None and g.legs and g.legs[0] is o:
            g.lfilled = [split_quantity(f, n, d, lot) for f in g.lfilled]
    # 3. The book's structures, rebuilt in the same priority.
    for side, orders in ((book.bids, bids), (book.asks, asks)):
        levels: dict[int, Level] = {}
        for o in orders:
            k = o.price * side.sign
            lvl = levels.get(k)
            if lvl is None:
                lvl = levels[k] = Level()
            lvl.orders[o.order_id] = o
            lvl.volume += o.remaining
        side.levels = levels
        side.keys = sorted(levels)
    book.buy_stops = [(o.stop_price, o.seq, o) for o in stops if o.side is BUY]
    book.sell_stops = [(-o.stop_price, o.seq, o) for o in stops if o.side is not BUY]
    for heap in (book.buy_stops, book.sell_stops):
        heapify(heap)
    book.retrack([o for o in stops if o.order_type is TRAILING_STOP])
    book.last_price = split_mark(book.last_price, n, d)
    book.ref_price = split_mark(book.ref_price, n, d)
    book.mark = split_mark(book.mark, n, d)
    for o in sorted(everyone, key=lambda o: o.seq):
        ev.append(
            (
                SPLIT_ADJUSTED,
                asset,
                o.order_id,
                o.user_id,
                split_id,
                o.quantity,
                o.remaining,
                o.filled,
                o.price,
                o.stop_price,
                o.trail,
                ts,
            )
        )
    return filled_before


__all__ = [
    "apply_split",
    "catch_up",
    "split_mark",
    "split_price",
    "split_quantity",
    "split_total",
    "split_trail",
]
