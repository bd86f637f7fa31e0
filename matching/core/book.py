"""One asset's order book: price-time priority, maker's price, stops, STP, collar.

Layout (all integers, no floats):

* Each side keeps ``keys``, a sorted list of price keys with the best level last, and
  ``levels``, a dict key → :class:`Level` (its orders in arrival order). The key is the price
  for bids and the negated price for asks, so "best" is always ``keys[-1]`` and "crosses a
  limit" is always ``key >= limit_key``. A level exists only while it holds an order.
* Stop orders wait in two heaps (buy stops by ascending stop price, sell stops by descending),
  ties broken by acceptance sequence. Cancelled stops are removed lazily; an entry is live
  while its order is and its key is the order's current stop (a trailing stop that moves gets
  a new entry, and the old one goes stale). Waiting trailing stops are also bucketed by water
  mark (``trail_sells`` / ``trail_buys``: key → the stops at that mark in acceptance order,
  with a heap of the keys; the key is the high-water mark for sells, the negated low-water
  mark for buys), so a new mark visits only the buckets it moves (``_trail``), in ascending
  key then acceptance order, and the stops it moves end up sharing one bucket at the new mark.
  A bucket is moved whole: no per-stop heap work on the water marks (the core bench's
  ``--new-types`` mix makes ~0.7 moves per command, with ~2,500 live trailing stops).
* ``day`` holds the live DAY orders (resting or waiting stops) in acceptance order, so
  EXPIRE_DAY expires them in a deterministic order. ``ext_day`` names those of them flagged
  ``extended_hours``: an EXPIRE_DAY for the REGULAR session leaves them (they live until the
  end of after-hours); ids of orders that ended meanwhile are pruned at each expiry.

Nothing here reads a clock or does I/O: the command's ``ts`` is copied into the events.

One module (about 600 lines) on purpose: the matching loop, stops and the collar share the
book's hot-path structures, and splitting them would add attribute lookups per order on the
core's measured path (bench/matching_core.py).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from heapq import heapify, heappop, heappush
from operator import attrgetter

from .constants import (
    ACTIVATED,
    BPS,
    BUY,
    CANCEL_NEWEST,
    CANCEL_OLDEST,
    CANCELLED,
    COLLAR,
    DAY,
    EXPIRED,
    FILL,
    FOK,
    FOK_UNFILLABLE,
    GTC,
    IOC,
    IOC_REMAINDER,
    LIMIT,
    MARKET,
    NO_LIQUIDITY,
    NOTIONAL_TOO_SMALL,
    OCO,
    PARENT,
    RESIZED,
    SELF_TRADE,
    SELL,
    STOP_LOSS,
    STOP_MOVED,
    TRAILING_STOP,
    TRIGGERED,
    USER,
)
from .events import Event
from .order import Group, Level, Order

NO_WATER = 1 << 62  # a buy's low-water mark before it has seen a mark: above any price


_SEQ = attrgetter("seq")


def trail_key(o: Order) -> int:
    """A trailing stop's water-mark bucket key: the high-water mark for a sell, the negated
    low-water mark for a buy (no mark yet: below every key, so the first mark moves it)."""
    return o.water if o.side is SELL else -(o.water or NO_WATER)


class BookSide:
    """Bids (``sign == 1``) or asks (``sign == -1``); key = price * sign, best = keys[-1]."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.levels: dict[int, Level] = {}

    def best_price(self) -> int:
        """Best price on this side, 0 when empty."""
        keys = self.keys
        return keys[-1] * self.sign if keys else 0


class AssetConfig:
    """Per-asset trading parameters (see ``ADD_ASSET``)."""

    __slots__ = ("collar_bps", "lot_size", "price_scale", "qty_scale", "stp", "tick_size")

    def __init__(
        self,
        price_scale: int,
        tick_size: int,
        qty_scale: int,
        lot_size: int,
        collar_bps: int,
        stp: str,
    ) -> None:
        self.price_scale = price_scale
        self.tick_size = tick_size
        self.qty_scale = qty_scale
        self.lot_size = lot_size
        self.collar_bps = collar_bps
        self.stp = stp


class Book:
    """The book of one asset. ``orders`` is the engine-wide id → live order index (shared)."""

    __slots__ = (
        "asks",
        "asset_id",
        "bids",
        "buy_stops",
        "config",
        "day",
        "ext_day",
        "extended",
        "last_price",
        "linking",
        "links",
        "mark",
        "orders",
        "parked",
        "pending",
        "ref_price",
        "sell_stops",
        "stop_count",
        "trade_seq",
        "trail_buy_keys",
        "trail_buys",
        "trail_count",
        "trail_entries",
        "trail_sell_keys",
        "trail_sells",
    )

    def __init__(self, asset_id: str, config: AssetConfig, orders: dict[str, Order]) -> None:
        self.asset_id = asset_id
        self.config = config
        self.orders = orders
        self.bids = BookSide(1)
        self.asks = BookSide(-1)
        self.buy_stops: list[tuple[int, int, Order]] = []
        self.sell_stops: list[tuple[int, int, Order]] = []
        self.stop_count = 0
        self.day: dict[str, Order] = {}
        self.ext_day: set[str] = set()
        self.last_price = 0  # last trade price, 0 = none yet
        self.ref_price = 0  # last REFERENCE_PRICE, 0 = none yet
        self.mark = 0  # the latest of the two: what stops trigger on
        self.trade_seq = 0  # fill ids are f"{asset_id}:{trade_seq}"
        # Waiting trailing stops by water mark (``trail_key``): key → stops in acceptance
        # order (dead ones dropped lazily), and a heap of the keys (lowest first).
        self.trail_sells: dict[int, list[Order]] = {}
        self.trail_sell_keys: list[int] = []
        self.trail_buys: dict[int, list[Order]] = {}
        self.trail_buy_keys: list[int] = []
        self.trail_count = 0  # live waiting trailing stops
        self.trail_entries = 0  # stops in the buckets, dead ones included
        # Linked orders (bracket / OCO / OTO): groups to visit once the current command's
        # matching is done (``_run_links``), and the legs waiting for their entry's first fill.
        self.links: list[Group] = []
        self.linking = False
        self.pending: dict[str, Order] = {}
        # The extended session (pre-market / after-hours): orders not flagged extended_hours
        # wait here, out of the book, in acceptance order, until the regular session.
        self.extended = False
        self.parked: dict[str, Order] = {}

    # ------------------------------------------------------------------ entry points

    def add(self, o: Order, ev: list[Event], ts: int) -> None:
        """Run a validated new order (or park it in the stop book). The caller has already
        put its ACCEPTED event in ``ev``."""
        if self.extended and not o.ext:
            self._park(o)
            return
        otype = o.order_type
        if otype is LIMIT:
            # Fast path: a GTC/DAY limit order that does not cross rests without more ado.
            tif = o.tif
            if o.side is BUY:
                own = self.bids
                okeys = self.asks.keys
                k = o.price
            else:
                own = self.asks
                okeys = self.bids.keys
                k = -o.price
            if (tif is GTC or tif is DAY) and (not okeys or okeys[-1] < -k):
                lvl = own.levels.get(k)
                if lvl is None:
                    lvl = Level()
                    own.levels[k] = lvl
                    insort(own.keys, k)
                oid = o.order_id
                lvl.orders[oid] = o
                lvl.volume += o.remaining
                self.orders[oid] = o
                if tif is DAY:
                    self.day[oid] = o
                return
        elif otype is not MARKET:  # a stop order waits for its trigger
            self.orders[o.order_id] = o
            if o.tif is DAY:
                self.day[o.order_id] = o
            if otype is TRAILING_STOP:
                self._track(o)
            if o.side is BUY:
                heappush(self.buy_stops, (o.stop_price, o.seq, o))
            else:
                heappush(self.sell_stops, (-o.stop_price, o.seq, o))
            self.stop_count += 1
            if self.mark:
                self._check_stops(ev, ts)
                if self.links and not self.linking:
                    self._run_links(ev, ts)
            return
        seq0 = self.trade_seq
        f0 = o.filled
        self._take(o, ev, ts)
        if o.group is not None and (o.filled != f0 or not o.remaining):
            self._queue(o.group)  # it traded or ended: its group hears of it
        if self.trade_seq != seq0 and self.stop_count:
            self._check_stops(ev, ts)
        if self.links and not self.linking:
            self._run_links(ev, ts)

    def cancel(self, o: Order, ev: list[Event], ts: int, reason: str = USER) -> None:
        """Cancel a live order of this book (or a waiting leg) at the owner's request (or
        ``reason``: a split that leaves it nothing). A linked order takes its group with it:
        the entry's legs (reason PARENT), a leg's siblings and live entry (reason OCO)."""
        oid = o.order_id
        ev.append((CANCELLED, self.asset_id, oid, o.user_id, reason, o.remaining, o.filled, ts))
        if self.pending and oid in self.pending:
            del self.pending[oid]
            o.remaining = 0
        else:
            self._remove(o)
        g = o.group
        if g is not None:
            reason = PARENT if o is g.parent else OCO
            p = g.parent
            g.parent = None
            if p is not None and p is not o:
                self._kill(p, reason, ev, ts)
            for b in g.legs:
                if b is not o:
                    self._kill(b, reason, ev, ts)

    def _remove_live(self, o: Order) -> None:
        """``_remove`` keeping ``remaining`` (the caller reports it, then zeroes it)."""
        rem = o.remaining
        self._remove(o)
        o.remaining = rem

    def reduce(self, o: Order, remaining: int) -> None:
        """A live order's remaining quantity goes down in place: it keeps its time priority."""
        if o.order_type is LIMIT and o.order_id not in self.parked:
            side = self.bids if o.side is BUY else self.asks
            side.levels[o.price * side.sign].volume -= o.remaining - remaining
        o.remaining = remaining

    def expire_day(
        self, ev: list[Event], ts: int, regular_only: bool = False, before: int = 0
    ) -> None:
        """Expire every DAY order (resting or waiting stop), oldest first; ``regular_only``:
        except those flagged for extended hours (``ext_day``); ``before``: only orders whose
        command was stamped before it (the close being handled), so a repeated EXPIRE_DAY for
        a close already handled never ends orders placed after it."""
        asset = self.asset_id
        keep = self.ext_day if regular_only else ()
        for o in list(self.day.values()):
            if o.order_id in keep or (before and o.ts >= before):
                continue
            ev.append((EXPIRED, asset, o.order_id, o.user_id, o.remaining, o.filled, ts))
            self._remove(o)
            if o.group is not None:
                self._queue(o.group)
        # What was skipped (flagged for extended hours, or placed after ``before``) stays.
        self.ext_day = {oid for oid in self.ext_day if oid in self.day}
        if self.links:
            self._run_links(ev, ts)

    def reference_price(self, price: int, ev: list[Event], ts: int) -> None:
        """A new reference price: the collar's anchor and a stop trigger."""
        self.ref_price = price
        self.mark = price
        if self.stop_count:
            self._check_stops(ev, ts)
            if self.links:
                self._run_links(ev, ts)

    def open_orders(self) -> int:
        """Live resting orders plus waiting stops, parked orders and waiting legs."""
        n = self.stop_count + len(self.parked) + len(self.pending)
        for side in (self.bids, self.asks):
            for lvl in side.levels.values():
                n += len(lvl.orders)
        return n

    def depth(self, n: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """Up to ``n`` levels per side, best first: (price, quantity, order count)."""
        out: list[list[tuple[int, int, int]]] = []
        for side in (self.bids, self.asks):
            rows: list[tuple[int, int, int]] = []
            levels = side.levels
            sign = side.sign
            for k in side.keys[: -n - 1 : -1] if n > 0 else ():
                lvl = levels[k]
                rows.append((k * sign, lvl.volume, len(lvl.orders)))
            out.append(rows)
        return out[0], out[1]

    # ------------------------------------------------------------------ internals

    def _remove(self, o: Order) -> None:
        """Take a live order out of the book (no event) and mark it dead."""
        oid = o.order_id
        del self.orders[oid]
        if o.tif is DAY:
            self.day.pop(oid, None)
        if self.parked and oid in self.parked:
            del self.parked[oid]
            o.remaining = 0
            return
        if o.order_type is not LIMIT:
            # Waiting stop: drop it lazily from its heap, compacting when mostly dead.
            o.remaining = 0
            self.stop_count -= 1
            if o.order_type is TRAILING_STOP:
                self.trail_count -= 1
            self._compact()
            return
        side = self.bids if o.side is BUY else self.asks
        k = o.price * side.sign
        lvl = side.levels[k]
        lvl.volume -= o.remaining
        o.remaining = 0
        q = lvl.orders
        del q[oid]
        if not q:
            del side.levels[k]
            keys = side.keys
            del keys[bisect_left(keys, k)]

    def _track(self, o: Order) -> None:
        """Put a waiting trailing stop in its water-mark bucket."""
        self.trail_count += 1
        self._bucket(o)

    def _bucket(self, o: Order) -> None:
        """File ``o`` in the bucket of its water mark, in acceptance order (a new order comes
        last; one back from the extended session may not)."""
        if o.side is SELL:
            buckets, keys, k = self.trail_sells, self.trail_sell_keys, o.water
        else:
            buckets, keys, k = self.trail_buys, self.trail_buy_keys, -(o.water or NO_WATER)
        bucket = buckets.get(k)
        if bucket is None:
            buckets[k] = [o]
            heappush(keys, k)
        elif bucket[-1].seq < o.seq:
            bucket.append(o)
        else:
            insort(bucket, o, key=_SEQ)
        self.trail_entries += 1

    def retrack(self, trailing: list[Order]) -> None:
        """Rebuild the water-mark buckets from the live waiting trailing stops (a split
        changed their marks); ``trail_count`` is unchanged."""
        self.trail_sells, self.trail_sell_keys = {}, []
        self.trail_buys, self.trail_buy_keys = {}, []
        self.trail_entries = 0
        for o in sorted(trailing, key=_SEQ):
            self._bucket(o)

    def _compact(self) -> None:
        """Drop dead and stale heap entries once they outnumber the live ones."""
        live = self.stop_count
        for heap, sign in ((self.buy_stops, 1), (self.sell_stops, -1)):
            if len(heap) > 2 * live + 16:
                heap[:] = [e for e in heap if e[2].remaining and e[0] * sign == e[2].stop_price]
                heapify(heap)
        if self.trail_entries > 2 * self.trail_count + 16:
            self._prune_trails(None)

    def _prune_trails(self, parked: dict[str, Order] | None) -> None:
        """Drop the buckets' dead stops (and those in ``parked``), and empty buckets."""
        n = 0
        for buckets, keys in (
            (self.trail_sells, self.trail_sell_keys),
            (self.trail_buys, self.trail_buy_keys),
        ):
            for k in list(buckets):
                live = [
                    o
                    for o in buckets[k]
                    if o.remaining
                    and o.order_type is TRAILING_STOP
                    and (parked is None or o.order_id not in parked)
                ]
                if live:
                    buckets[k] = live
                    n += len(live)
                else:
                    del buckets[k]
            keys[:] = list(buckets)
            heapify(keys)
        self.trail_entries = n

    def trail_stop(self, side: str, trail: int, trail_bps: int, water: int) -> int:
        """The stop of a trailing order (``trail`` price units, else ``trail_bps``) at water
        mark ``water``, on the tick grid (a sell's rounds down, a buy's up: never closer to the
        market than the trail)."""
        tick = self.config.tick_size
        if side is SELL:
            s = water - trail if trail else water * (BPS - trail_bps) // BPS
            s -= s % tick
            return s if s > tick else tick
        s = water + trail if trail else -(-water * (BPS + trail_bps) // BPS)
        return s + -s % tick

    def _trail(self, ev: list[Event], ts: int) -> None:
        """Follow the mark: a sell's water mark rises with it, a buy's falls, and the stop
        follows at the trail (never back). A buy's limit cap, if any, follows its stop down
        by the collar (it only gets lower, so the broker's hold still covers it). Visits only
        the stops whose water mark the new mark passes: sells by ascending water mark, then
        buys by descending (no water mark yet first), ties by acceptance.

        The buckets the mark passes are taken whole and their live stops become one bucket at
        the new mark; the stops that moved get their new stop-heap entries in one go (a heap
        rebuild when they are many: it also drops the stale entries they leave)."""
        mark = self.mark
        if not mark:
            return
        moved = False
        cfg = self.config
        tick = cfg.tick_size
        asset = self.asset_id
        append = ev.append
        pop = heappop
        keys = self.trail_sell_keys
        if keys and keys[0] < mark:
            buckets = self.trail_sells
            members = buckets.pop(pop(keys))
            merged = bool(keys) and keys[0] < mark
            while keys and keys[0] < mark:
                members += buckets.pop(pop(keys))  # ascending water mark, each by acceptance
            kept = [o for o in members if o.remaining and o.order_type is TRAILING_STOP]
            fresh: list[tuple[int, int, Order]] = []
            for o in kept:
                o.water = mark
                # As trail_stop(SELL, ...), inline: the hot path of a rising market.
                t = o.trail
                s = mark - t if t else mark * (BPS - o.trail_bps) // BPS
                s -= s % tick
                if s < tick:
                    s = tick
                if s > o.stop_price:
                    o.stop_price = s
                    fresh.append((-s, o.seq, o))
                    append((STOP_MOVED, asset, o.order_id, o.user_id, s, o.price, mark, ts))
            self._rebucket(buckets, keys, mark, kept, merged, len(members))
            if fresh:
                self._push_stops(self.sell_stops, fresh, -1)
                moved = True
        keys = self.trail_buy_keys
        key = -mark
        if keys and keys[0] < key:
            buckets = self.trail_buys
            members = buckets.pop(pop(keys))
            merged = bool(keys) and keys[0] < key
            while keys and keys[0] < key:
                members += buckets.pop(pop(keys))
            kept = [o for o in members if o.remaining and o.order_type is TRAILING_STOP]
            fresh = []
            for o in kept:
                o.water = mark
                t = o.trail
                s = mark + t if t else -(-mark * (BPS + o.trail_bps) // BPS)
                s += -s % tick
                if s >= o.stop_price:
                    continue
                o.stop_price = s
                if o.price:
                    cap = s * (BPS + cfg.collar_bps) // BPS
                    cap -= cap % tick
                    if cap < o.price:
                        o.price = cap
                fresh.append((s, o.seq, o))
                append((STOP_MOVED, asset, o.order_id, o.user_id, s, o.price, mark, ts))
            self._rebucket(buckets, keys, key, kept, merged, len(members))
            if fresh:
                self._push_stops(self.buy_stops, fresh, 1)
                moved = True
        if moved:
            self._compact()

    def _rebucket(
        self,
        buckets: dict[int, list[Order]],
        keys: list[int],
        key: int,
        kept: list[Order],
        merged: bool,
        taken: int,
    ) -> None:
        """The live stops of the buckets ``_trail`` took (``taken`` entries) go to the bucket
        at ``key``, in acceptance order."""
        self.trail_entries -= taken - len(kept)
        if not kept:
            return
        if merged:
            kept.sort(key=_SEQ)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = kept
            heappush(keys, key)
        else:
            bucket += kept
            bucket.sort(key=_SEQ)

    def _push_stops(
        self, heap: list[tuple[int, int, Order]], fresh: list[tuple[int, int, Order]], sign: int
    ) -> None:
        """Add the moved stops' new entries to a stop heap: one by one when they are few,
        else as a rebuild without the stale and dead entries (O(n) instead of O(k log n))."""
        if len(fresh) * 4 < len(heap):
            push = heappush
            for e in fresh:
                push(heap, e)
            return
        heap[:] = [e for e in heap if e[2].remaining and e[0] * sign == e[2].stop_price]
        heap += fresh
        heapify(heap)

    def _rest(self, o: Order) -> None:
        side = self.bids if o.side is BUY else self.asks
        k = o.price * side.sign
        lvl = side.levels.get(k)
        if lvl is None:
            lvl = Level()
            side.levels[k] = lvl
            insort(side.keys, k)
        lvl.orders[o.order_id] = o
        lvl.volume += o.remaining
        self.orders[o.order_id] = o
        if o.tif is DAY:
            self.day[o.order_id] = o

    def _finish(self, o: Order, reason: str, ev: list[Event], ts: int) -> None:
        """Cancel a taker's unfilled remainder (it never rests)."""
        ev.append(
            (CANCELLED, self.asset_id, o.order_id, o.user_id, reason, o.remaining, o.filled, ts)
        )
        o.remaining = 0
        if o.tif is DAY:
            self.day.pop(o.order_id, None)

    def _collar_limit(self, side: str, opp: BookSide) -> int:
        """The worst price a market order may trade at; 0 when there is nothing to anchor on.

        The anchor is the mark: the freshest of the last reference price and the venue's own
        last trade (whichever came later), else the touch. Anchored on a stale reference, a
        stop-loss sell triggered by trades in a falling market found every bid beyond the
        collar and was cancelled with nothing sold (issue 14)."""
        cfg = self.config
        ref = self.mark or opp.best_price()
        if not ref:
            return 0
        tick = cfg.tick_size
        if side is BUY:
            lim = ref * (BPS + cfg.collar_bps) // BPS
            lim -= lim % tick
            return lim if lim > tick else tick
        lim = -(-ref * (BPS - cfg.collar_bps) // BPS)
        lim += -lim % tick
        return lim if lim > tick else tick

    def _take(self, o: Order, ev: list[Event], ts: int) -> None:
        """Run an incoming LIMIT or MARKET order (new, or a stop that just triggered)."""
        opp = self.asks if o.side is BUY else self.bids
        tif = o.tif
        if o.order_type is LIMIT:
            limit_key = o.price * opp.sign
            okeys = opp.keys
            if not okeys or okeys[-1] < limit_key:  # does not cross: the common passive add
                if tif is IOC:
                    self._finish(o, IOC_REMAINDER, ev, ts)
                elif tif is FOK:
                    self._finish(o, FOK_UNFILLABLE, ev, ts)
                else:
                    self._rest(o)
                return
            if tif is FOK and not self._fok_fillable(o, opp, limit_key):
                self._finish(o, FOK_UNFILLABLE, ev, ts)
                return
            self_trade = self._match(o, opp, limit_key, ev, ts)
            if o.remaining:
                if self_trade:
                    self._finish(o, SELF_TRADE, ev, ts)
                elif tif is IOC or tif is FOK:
                    self._finish(o, IOC_REMAINDER, ev, ts)
                else:
                    self._rest(o)
            elif tif is DAY:
                self.day.pop(o.order_id, None)
            return

        # MARKET (or a triggered STOP_LOSS): never rests, never trades beyond the collar.
        lim = self._collar_limit(o.side, opp)
        if not lim:
            self._finish(o, FOK_UNFILLABLE if tif is FOK else NO_LIQUIDITY, ev, ts)
            return
        limit_key = lim * opp.sign
        if o.notional:
            self._take_notional(o, opp, limit_key, ev, ts)
            return
        if tif is FOK and not self._fok_fillable(o, opp, limit_key):
            self._finish(o, FOK_UNFILLABLE, ev, ts)
            return
        self_trade = self._match(o, opp, limit_key, ev, ts)
        if o.remaining:
            if self_trade:
                reason = SELF_TRADE
            elif not opp.keys:
                reason = NO_LIQUIDITY
            else:
                reason = COLLAR
            self._finish(o, reason, ev, ts)
        elif tif is DAY:
            self.day.pop(o.order_id, None)

    def _fok_fillable(self, o: Order, opp: BookSide, limit_key: int) -> bool:
        """Would the whole quantity fill within ``limit_key``, given self-trade prevention?"""
        need = o.remaining
        uid = o.user_id
        skip_own = o.stp is CANCEL_OLDEST
        levels = opp.levels
        for k in reversed(opp.keys):
            if k < limit_key:
                return False
            for m in levels[k].orders.values():
                mrem = m.remaining
                if m.user_id == uid:
                    if skip_own:
                        continue
                    return False
                need -= mrem
                if need <= 0:
                    return True
        return False

    def _match(self, o: Order, opp: BookSide, limit_key: int, ev: list[Event], ts: int) -> bool:
        """Trade ``o`` against ``opp`` down to ``limit_key``; True if stopped by self-trade
        prevention. The hot loop: locals only, one tuple per fill, one iterator per level.

        Makers leave a level only from its front (filled, or cancelled by self-trade
        prevention), so the ones to delete are a prefix of the iteration, collected in
        ``gone`` and removed after it (or the whole level goes at once)."""
        okeys = opp.keys
        olevels = opp.levels
        sign = opp.sign
        orders = self.orders
        day = self.day
        asset = self.asset_id
        uid = o.user_id
        oid = o.order_id
        side = o.side
        rem = o.remaining
        filled = o.filled
        n = self.trade_seq
        price = traded = 0
        self_trade = False
        append = ev.append
        while okeys:
            k = okeys[-1]
            if k < limit_key:
                break
            price = k * sign
            lvl = olevels[k]
            q = lvl.orders
            gone: list[str] = []
            for m in q.values():
                mrem = m.remaining
                moid = m.order_id
                if m.user_id == uid:
                    mode = o.stp
                    if mode is CANCEL_NEWEST:
                        self_trade = True
                        break
                    append((CANCELLED, asset, moid, m.user_id, SELF_TRADE, mrem, m.filled, ts))
                    m.remaining = 0
                    lvl.volume -= mrem
                    gone.append(moid)
                    del orders[moid]
                    if m.tif is DAY:
                        del day[moid]
                    if m.group is not None:
                        self._queue(m.group)
                    if mode is not CANCEL_OLDEST:  # CANCEL_BOTH
                        self_trade = True
                        break
                    continue
                t = rem if rem < mrem else mrem
                rem -= t
                mrem -= t
                filled += t
                m.remaining = mrem
                m.filled += t
                lvl.volume -= t
                n += 1
                traded = price
                append(
                    (
                        FILL,
                        asset,
                        oid,
                        f"{asset}:{n}",
                        moid,
                        oid,
                        m.user_id,
                        uid,
                        side,
                        price,
                        t,
                        mrem,
                        rem,
                        not mrem,
                        not rem,
                        ts,
                    )
                )
                g = m.group
                if g is not None and not g.queued:
                    g.queued = True
                    self.links.append(g)
                if not mrem:
                    gone.append(moid)
                    del orders[moid]
                    if m.tif is DAY:
                        del day[moid]
                if not rem:
                    break
            if gone:
                if len(gone) == len(q):
                    del olevels[k]
                    okeys.pop()
                else:
                    for x in gone:
                        del q[x]
            if not rem or self_trade:
                break
        o.remaining = rem
        o.filled = filled
        if n != self.trade_seq:
            self.trade_seq = n
            self.last_price = self.mark = traded
        return self_trade

    def _take_notional(
        self, o: Order, opp: BookSide, limit_key: int, ev: list[Event], ts: int
    ) -> None:
        """A market buy for a cash amount: buy as many lots as the notional pays for at the
        resting prices. Cash is tracked exactly in price*quantity units (no rounding)."""
        cfg = self.config
        lot = cfg.lot_size
        cash = o.notional * 10**cfg.qty_scale  # price units x quantity units
        okeys = opp.keys
        olevels = opp.levels
        sign = opp.sign
        orders = self.orders
        day = self.day
        asset = self.asset_id
        uid = o.user_id
        oid = o.order_id
        n = self.trade_seq
        price = traded = 0
        self_trade = False
        done = False
        while okeys:
            k = okeys[-1]
            if k < limit_key:
                break
            price = k * sign
            lvl = olevels[k]
            q = lvl.orders
            gone: list[str] = []
            for m in q.values():
                mrem = m.remaining
                moid = m.order_id
                affordable = cash // price // lot * lot
                if not affordable:
                    done = True  # prices only get worse from here
                    break
                if m.user_id == uid:
                    mode = o.stp
                    if mode is CANCEL_NEWEST:
                        self_trade = True
                        break
                    ev.append((CANCELLED, asset, moid, m.user_id, SELF_TRADE, mrem, m.filled, ts))
                    m.remaining = 0
                    lvl.volume -= mrem
                    gone.append(moid)
                    del orders[moid]
                    if m.tif is DAY:
                        del day[moid]
                    if m.group is not None:
                        self._queue(m.group)
                    if mode is not CANCEL_OLDEST:
                        self_trade = True
                        break
                    continue
                t = affordable if affordable < mrem else mrem
                cash -= t * price
                mrem -= t
                o.filled += t
                m.remaining = mrem
                m.filled += t
                lvl.volume -= t
                n += 1
                traded = price
                done = cash // price < lot
                ev.append(
                    (
                        FILL,
                        asset,
                        oid,
                        f"{asset}:{n}",
                        moid,
                        oid,
                        m.user_id,
                        uid,
                        o.side,
                        price,
                        t,
                        mrem,
                        0,
                        not mrem,
                        done,
                        ts,
                    )
                )
                if m.group is not None:
                    self._queue(m.group)
                if not mrem:
                    gone.append(moid)
                    del orders[moid]
                    if m.tif is DAY:
                        del day[moid]
                if done:
                    break
            if gone:
                if len(gone) == len(q):
                    del olevels[k]
                    okeys.pop()
                else:
                    for x in gone:
                        del q[x]
            if done or self_trade:
                break
        if n != self.trade_seq:
            self.trade_seq = n
            self.last_price = self.mark = traded
        if done and o.filled:
            o.remaining = 0
            if o.tif is DAY:
                day.pop(oid, None)
            return
        if self_trade:
            reason = SELF_TRADE
        elif done:
            reason = NOTIONAL_TOO_SMALL
        elif not okeys:
            reason = NO_LIQUIDITY
        else:
            reason = COLLAR
        self._finish(o, reason, ev, ts)

    def _check_stops(self, ev: list[Event], ts: int) -> None:
        """Trigger every stop the current mark reaches, one at a time (each may trade and move
        the mark). Among triggered stops: buy stops lowest stop first, sell stops highest first,
        and between the two sides the earlier accepted order first."""
        bs = self.buy_stops
        ss = self.sell_stops
        while self.stop_count:
            if self.trail_count:
                m = self.mark
                sells = self.trail_sell_keys
                buys = self.trail_buy_keys
                if (sells and sells[0] < m) or (buys and buys[0] < -m):
                    self._trail(ev, ts)
            mark = self.mark
            while bs:  # drop dead and stale entries from the tops
                top = bs[0]
                o = top[2]
                if o.remaining and top[0] == o.stop_price:
                    break
                heappop(bs)
            while ss:
                top = ss[0]
                o = top[2]
                if o.remaining and -top[0] == o.stop_price:
                    break
                heappop(ss)
            buy_hit = bool(bs) and bs[0][0] <= mark
            sell_hit = bool(ss) and -ss[0][0] >= mark
            if buy_hit and (not sell_hit or bs[0][1] < ss[0][1]):
                o = heappop(bs)[2]
            elif sell_hit:
                o = heappop(ss)[2]
            else:
                return
            self.stop_count -= 1
            del self.orders[o.order_id]
            ev.append((TRIGGERED, self.asset_id, o.order_id, o.user_id, o.stop_price, mark, ts))
            t = o.order_type
            if t is TRAILING_STOP:
                self.trail_count -= 1
                o.order_type = LIMIT if o.price else MARKET
            else:
                o.order_type = MARKET if t is STOP_LOSS else LIMIT
            g = o.group
            if g is not None:
                # An exit that triggers ends its entry's remainder first: the position is
                # being closed (and the exit must not trade against its own entry).
                p = g.parent
                if p is not None and p.remaining:
                    self._kill(p, OCO, ev, ts)
                self._take(o, ev, ts)
                self._queue(g)
                continue
            self._take(o, ev, ts)

    # ------------------------------------------------------------------ linked orders

    def _queue(self, g: Group) -> None:
        """Visit ``g`` once the command's matching is done (first queued, first visited)."""
        if not g.queued:
            g.queued = True
            self.links.append(g)

    def _run_links(self, ev: list[Event], ts: int) -> None:
        """Visit the queued groups in order; a visit may trade and queue more (or the same
        group again), visited after the ones already waiting."""
        self.linking = True
        links = self.links
        i = 0
        while i < len(links):
            g = links[i]
            i += 1
            g.queued = False
            self._link(g, ev, ts)
        links.clear()
        self.linking = False

    def _kill(self, o: Order, reason: str, ev: list[Event], ts: int) -> None:
        """End a linked order that is still live or waiting (nothing if it has ended)."""
        oid = o.order_id
        if oid in self.pending:
            del self.pending[oid]
        elif o.remaining:
            self._remove_live(o)
        else:
            return
        ev.append((CANCELLED, self.asset_id, oid, o.user_id, reason, o.remaining, o.filled, ts))
        o.remaining = 0

    def _resize(self, o: Order, delta: int) -> None:
        """A live linked order's quantity and remaining change by ``delta``, in place."""
        if o.order_type is LIMIT and o.order_id not in self.parked:
            side = self.bids if o.side is BUY else self.asks
            side.levels[o.price * side.sign].volume += delta
        o.quantity += delta
        o.remaining += delta

    def enter_legs(self, g: Group, q: int, ev: list[Event], ts: int, announce: bool) -> None:
        """Put a group's waiting legs in the book for ``q`` each, one after the other (each
        may trade at once): a leg that trades leaves the next one only what it did not sell,
        so the legs never sell more than ``q`` together. ``announce``: say RESIZED ACTIVATED
        first (a bracket's legs, accepted with 0)."""
        linking = self.linking
        self.linking = True
        asset = self.asset_id
        p = g.parent
        for i, b in enumerate(g.legs):
            if b.order_id not in self.pending:
                continue  # a leg already in (an OCO's first order)
            if not q:
                self._kill(b, OCO, ev, ts)
                continue
            del self.pending[b.order_id]
            if announce:
                b.quantity = b.remaining = q
                ev.append((RESIZED, asset, b.order_id, b.user_id, q, q, ACTIVATED, ts))
            elif b.remaining != q:
                b.quantity -= b.remaining - q
                b.remaining = q
                ev.append((RESIZED, asset, b.order_id, b.user_id, b.quantity, q, OCO, ts))
            self.add(b, ev, ts)
            g.lfilled[i] = b.filled
            q = b.remaining
            if b.filled and p is not None and p.remaining:
                self._kill(p, OCO, ev, ts)
        self.linking = linking

    def _link(self, g: Group, ev: list[Event], ts: int) -> None:
        """Pass on what happened to a group's orders since its last visit: the entry's fills
        activate the legs (in proportion), a leg's fills shrink its siblings by as much (they
        sell the same shares) and end the entry's remainder; an entry that ended unfilled
        takes its waiting legs with it; a leg that ended (filled, cancelled, expired) ends the
        others."""
        asset = self.asset_id
        legs = g.legs
        p = g.parent
        if p is not None:
            d = p.filled - g.pfilled
            if d > 0:
                g.pfilled = p.filled
                if g.active:
                    for b in legs:
                        if b.remaining:
                            self._resize(b, d)
                            ev.append(
                                (
                                    RESIZED,
                                    asset,
                                    b.order_id,
                                    b.user_id,
                                    b.quantity,
                                    b.remaining,
                                    ACTIVATED,
                                    ts,
                                )
                            )
                else:
                    g.active = True
                    self.enter_legs(g, d, ev, ts, True)
        for i, a in enumerate(legs):
            d = a.filled - g.lfilled[i]
            if d <= 0:
                continue
            g.lfilled[i] = a.filled
            for b in legs:
                if b is a or not b.remaining or b.order_id in self.pending:
                    continue
                if b.remaining > d:
                    self._resize(b, -d)
                    ev.append(
                        (RESIZED, asset, b.order_id, b.user_id, b.quantity, b.remaining, OCO, ts)
                    )
                else:
                    self._kill(b, OCO, ev, ts)
            p = g.parent
            if p is not None and p.remaining:
                self._kill(p, OCO, ev, ts)
        p = g.parent
        if p is not None and not p.remaining:
            g.parent = None  # the entry has ended
            if not g.active:  # with nothing filled: its legs never had anything to sell
                for b in legs:
                    self._kill(b, PARENT, ev, ts)
                return
        if g.active and any(not b.remaining for b in legs):
            for b in legs:
                self._kill(b, OCO, ev, ts)
            p = g.parent
            g.parent = None
            if p is not None:
                self._kill(p, OCO, ev, ts)

    # ------------------------------------------------------------------ sessions

    def _park(self, o: Order) -> None:
        """An order not flagged extended_hours, arriving in the extended session: it waits
        out of the book until the regular session (one that cannot wait is cancelled by the
        caller before)."""
        oid = o.order_id
        self.orders[oid] = o
        self.parked[oid] = o
        if o.tif is DAY:
            self.day[oid] = o

    def enter_extended(self) -> None:
        """SESSION EXTENDED (the regular close): every live order not flagged extended_hours
        (resting, or a waiting stop) leaves the book for ``parked``, in acceptance order:
        it neither trades against extended-hours orders nor triggers on their trades."""
        if self.extended:
            return
        self.extended = True
        move: list[Order] = []
        for side in (self.bids, self.asks):
            for lvl in side.levels.values():
                move.extend(o for o in lvl.orders.values() if not o.ext)
        seen: set[int] = set()
        for heap, sign in ((self.buy_stops, 1), (self.sell_stops, -1)):
            for e in heap:
                o = e[2]
                live = o.remaining and e[0] * sign == o.stop_price
                if live and not o.ext and id(o) not in seen:
                    seen.add(id(o))
                    move.append(o)
        move.sort(key=lambda o: o.seq)
        parked = self.parked
        for o in move:
            oid = o.order_id
            if o.order_type is LIMIT:
                side = self.bids if o.side is BUY else self.asks
                k = o.price * side.sign
                lvl = side.levels[k]
                lvl.volume -= o.remaining
                q = lvl.orders
                del q[oid]
                if not q:
                    del side.levels[k]
                    del side.keys[bisect_left(side.keys, k)]
            else:
                self.stop_count -= 1
                if o.order_type is TRAILING_STOP:
                    self.trail_count -= 1
            parked[oid] = o
        if seen:
            for heap in (self.buy_stops, self.sell_stops):
                heap[:] = [e for e in heap if e[2].order_id not in parked]
                heapify(heap)
            self._prune_trails(parked)

    def leave_extended(self, ev: list[Event], ts: int) -> None:
        """SESSION REGULAR (the regular open): the parked orders come back in acceptance
        order, each as if arriving now (one may trade; it queues behind the orders already
        resting at its price)."""
        if not self.extended:
            return
        self.extended = False
        parked = self.parked
        for o in sorted(parked.values(), key=lambda o: o.seq):
            if parked.pop(o.order_id, None) is None:
                continue  # ended meanwhile: a linked order that one coming back took along
            del self.orders[o.order_id]
            self.add(o, ev, ts)
