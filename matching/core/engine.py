"""The engine: all books of one shard, command validation, duplicate suppression.

Every method takes one command and returns the list of events it caused, in order. The engine
is a pure function of the commands it has seen (no clock, no randomness, no I/O), so replaying
the same commands into an engine restored from a snapshot yields byte-identical events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from .book import AssetConfig, Book
from .constants import (
    ACCEPTED,
    ACTIVATED,
    ADD_ASSET,
    ASSET_CONFIGURED,
    BPS,
    BRACKET,
    BUY,
    CANCEL,
    CANCEL_BOTH,
    CANCEL_NEWEST,
    CANCEL_OLDEST,
    CANCEL_REJECTED,
    CANCELLED,
    DAY,
    DEFAULT_COLLAR_BPS,
    EXPIRE_DAY,
    EXTENDED,
    FOK,
    GTC,
    INVALID_CONFIG,
    INVALID_LEGS,
    INVALID_NOTIONAL,
    INVALID_ORDER_TYPE,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_RATIO,
    INVALID_SIDE,
    INVALID_STOP_PRICE,
    INVALID_STP,
    INVALID_TIF,
    INVALID_TRAIL,
    IOC,
    LIMIT,
    LINKED,
    MALFORMED,
    MARKET,
    NEW_ORDER,
    OCO,
    OTO,
    PARENT,
    REFERENCE_PRICE,
    REGULAR,
    REJECTED,
    REPLACE,
    REPLACE_REJECTED,
    REPLACED,
    RESIZED,
    RESYNC,
    SCALE_CHANGE_WITH_OPEN_ORDERS,
    SELL,
    SESSION,
    SESSION_CLOSED,
    SIMPLE,
    SPLIT,
    STOP_LIMIT,
    STOP_LOSS,
    TRAILING_STOP,
    UNKNOWN_ASSET,
    UNKNOWN_COMMAND,
    UNKNOWN_ORDER,
)
from .events import Event
from .order import Group, Order
from .split import apply_split, catch_up

# Canonical objects for incoming names: the book compares them with ``is``.
_SIDES = {BUY: BUY, SELL: SELL}
_TYPES = {
    MARKET: MARKET,
    LIMIT: LIMIT,
    STOP_LOSS: STOP_LOSS,
    STOP_LIMIT: STOP_LIMIT,
    TRAILING_STOP: TRAILING_STOP,
}
_TIFS = {GTC: GTC, DAY: DAY, IOC: IOC, FOK: FOK}
_STPS = {CANCEL_NEWEST: CANCEL_NEWEST, CANCEL_OLDEST: CANCEL_OLDEST, CANCEL_BOTH: CANCEL_BOTH}
_PRICED = frozenset({LIMIT, STOP_LIMIT})
_STOPS = frozenset({STOP_LOSS, STOP_LIMIT})
_CLASSES = {BRACKET: BRACKET, OCO: OCO, OTO: OTO}
# The legs each class takes, in order: (allowed order types) per leg.
_LEG_TYPES = {
    BRACKET: ((LIMIT,), (STOP_LOSS, STOP_LIMIT)),
    OTO: ((LIMIT, STOP_LOSS, STOP_LIMIT),),
    OCO: ((STOP_LOSS, STOP_LIMIT),),
}

DEFAULT_DEDUP_WINDOW = 100_000
MAX_SPLIT_TERM = 1_000_000  # a SPLIT's numerator and denominator


class Engine:
    """All order books of one shard.

    ``dedup_window`` bounds the memory of finished order ids kept to ignore duplicate
    NEW_ORDER commands (live orders are always recognised); eviction is by count, so it is
    deterministic and part of the snapshot.
    """

    __slots__ = (
        "books",
        "dedup_window",
        "orders",
        "seen",
        "seen_fifo",
        "seq",
        "split_filled",
        "splits",
    )

    def __init__(self, dedup_window: int = DEFAULT_DEDUP_WINDOW) -> None:
        self.books: dict[str, Book] = {}
        self.orders: dict[str, Order] = {}
        self.seq = 0
        self.dedup_window = dedup_window
        self.seen: set[str] = set()
        self.seen_fifo: deque[str] = deque()
        # The stock splits applied, by asset: (split count, numerator, denominator), oldest
        # first; a command stamped with an older count catches up with them (``core/split.py``).
        self.splits: dict[str, list[tuple[int, int, int]]] = {}
        # Each order's filled quantity just before each of its asset's splits, by split count
        # (in the snapshot): a REPLACE that missed splits rounds its filled part and the rest
        # apart at each. An order no longer live is dropped from the older records at a split.
        self.split_filled: dict[str, dict[int, dict[str, int]]] = {}

    # ------------------------------------------------------------------ commands

    def new_order(
        self,
        order_id: str,
        user_id: str,
        asset_id: str,
        side: str,
        order_type: str,
        tif: str,
        quantity: int = 0,
        price: int = 0,
        stop_price: int = 0,
        ts: int = 0,
        notional: int = 0,
        stp: str | None = None,
        trail_amount: int = 0,
        trail_bps: int = 0,
        extended_hours: bool = False,
        filled: int = 0,
        restored: bool = False,
        order_class: str | None = None,
        legs: Any = None,
    ) -> list[Event]:
        """NEW_ORDER. A repeated ``order_id`` is ignored (no events).

        ``restored``: the order is rebuilt from the system of record (PostgreSQL) after the
        shard's state was lost: no ACCEPTED (it was accepted long ago), ``filled`` of its
        ``quantity`` already filled, and only a live order's id is a repeat (a finished id in
        the window is not: the record says the order is still open). A trailing stop keeps
        the better of its recorded ``stop_price`` and the one the mark gives.

        ``order_class`` BRACKET / OTO / OCO with ``legs`` (dicts: ``order_id``,
        ``order_type``, ``tif``, ``price``, ``stop_price``) links orders (see ``_legs``): the
        legs share the order's user, asset and quantity; they are ACCEPTED right after it
        (a bracket's or OTO's with quantity 0: they wait for the entry's fills) and rejected
        with it.

        A TRAILING_STOP takes ``trail_amount`` (price units) or ``trail_bps`` (1/100 %); its
        first stop trails the book's mark, or is ``stop_price`` when the book has no mark yet.
        Its ``price`` (a BUY's limit cap, optional) makes it trigger into a LIMIT order.
        ``extended_hours`` only changes when a DAY order expires (see ``expire_day``)."""
        seen = self.seen
        if order_id in seen:
            if not restored or order_id in self.orders:
                return []
        elif order_id in self.orders:  # live, and out of the window
            return []
        else:  # as _remember, inline: every order passes here
            seen.add(order_id)
            fifo = self.seen_fifo
            fifo.append(order_id)
            if len(fifo) > self.dedup_window:
                seen.discard(fifo.popleft())

        book = self.books.get(asset_id)
        if book is None:
            return [(REJECTED, asset_id, order_id, user_id, UNKNOWN_ASSET, ts)]
        cfg = book.config
        # Canonical names: the edge interns them to these objects, so identity usually decides
        # without a dict lookup.
        s = side if side is BUY or side is SELL else _SIDES.get(side)
        t = order_type if order_type is LIMIT else _TYPES.get(order_type)
        f = tif if tif is GTC or tif is DAY else _TIFS.get(tif)
        mode = cfg.stp if stp is None else _STPS.get(stp)
        tick = cfg.tick_size
        kind = None
        leg_specs: list[tuple[str, str, str, int, int]] = []
        # The common case in one test: a valid plain LIMIT by quantity with none of the other
        # terms (most orders are), where the checks below would reach the same verdict branch
        # by branch. Anything else goes through them.
        if not (
            t is LIMIT
            and s is not None
            and f is not None
            and mode is not None
            and price > 0
            and quantity > 0
            and not price % tick
            and not quantity % cfg.lot_size
            and not (stop_price or notional or trail_amount or trail_bps or restored)
            and order_class is None
            and legs is None
        ):
            reason = None
            if s is None:
                reason = INVALID_SIDE
            elif t is None:
                reason = INVALID_ORDER_TYPE
            elif f is None:
                reason = INVALID_TIF
            elif mode is None:
                reason = INVALID_STP
            elif notional:
                if notional < 0 or quantity or t is not MARKET or s is not BUY or f is FOK:
                    reason = INVALID_NOTIONAL
            elif (
                quantity <= 0
                or quantity % cfg.lot_size
                or (restored and (filled < 0 or filled >= quantity or filled % cfg.lot_size))
            ):
                reason = INVALID_QUANTITY
            if reason is None:
                if t in _PRICED:
                    if price <= 0 or price % tick:
                        reason = INVALID_PRICE
                elif t is TRAILING_STOP:
                    if price and (price < 0 or price % tick or s is not BUY):
                        reason = INVALID_PRICE
                elif price:
                    reason = INVALID_PRICE
            if reason is None:
                if t in _STOPS:
                    if stop_price <= 0 or stop_price % tick:
                        reason = INVALID_STOP_PRICE
                elif t is TRAILING_STOP:
                    if stop_price < 0 or stop_price % tick or not (stop_price or book.mark):
                        reason = INVALID_STOP_PRICE
                elif stop_price:
                    reason = INVALID_STOP_PRICE
            if reason is None:
                if t is TRAILING_STOP:
                    if not _trail_ok(trail_amount, trail_bps, tick):
                        reason = INVALID_TRAIL
                elif trail_amount or trail_bps:
                    reason = INVALID_TRAIL
            if (order_class is not None and order_class != SIMPLE) or legs is not None:
                kind = _CLASSES.get(order_class) if type(order_class) is str else None
                if reason is None:
                    if kind is None or t is None or s is None or f is None:
                        reason = INVALID_LEGS
                    else:
                        leg_specs, reason = self._legs(
                            kind, order_id, s, t, f, price, notional, legs, tick
                        )
                if reason is not None:
                    rejected = [(REJECTED, asset_id, order_id, user_id, reason, ts)]
                    for leg_id in _leg_ids(legs):
                        if leg_id not in self.seen and leg_id not in self.orders:
                            self._remember(leg_id)
                            rejected.append((REJECTED, asset_id, leg_id, user_id, reason, ts))
                    return rejected
            if reason is not None or s is None or t is None or f is None or mode is None:
                return [(REJECTED, asset_id, order_id, user_id, reason, ts)]
        self.seq += 1
        o = Order(
            order_id,
            user_id,
            asset_id,
            s,
            t,
            f,
            quantity,
            price,
            stop_price,
            notional,
            mode,
            self.seq,
            ts,
        )
        if t is TRAILING_STOP:
            o.trail = trail_amount
            o.trail_bps = trail_bps
            if book.mark:
                o.water = book.mark
                stop = book.trail_stop(s, trail_amount, trail_bps, book.mark)
                if restored and stop_price:  # never looser than the recorded stop
                    stop = max(stop, stop_price) if s is SELL else min(stop, stop_price)
                o.stop_price = stop_price = stop
        if restored:
            o.filled = filled
            o.remaining = quantity - filled
            restored_ev: list[Event] = []
            book.add(o, restored_ev, ts)
            if extended_hours and order_id in book.day:
                book.ext_day.add(order_id)
            return restored_ev
        ev: list[Event] = [
            (
                ACCEPTED,
                asset_id,
                order_id,
                user_id,
                s,
                t,
                f,
                quantity,
                notional,
                price,
                stop_price,
                ts,
            )
        ]
        if extended_hours:
            o.ext = True
        elif book.extended and (t is MARKET or f is IOC or f is FOK):
            ev.append((CANCELLED, asset_id, order_id, user_id, SESSION_CLOSED, quantity, 0, ts))
            for spec in leg_specs:  # a contingent order's legs go with it
                self._remember(spec[0])
                ev.append((REJECTED, asset_id, spec[0], user_id, SESSION_CLOSED, ts))
            return ev  # it cannot wait for the regular session
        if kind is not None:
            self._linked(book, o, kind, leg_specs, ev, ts)
            return ev
        book.add(o, ev, ts)
        if extended_hours and order_id in book.day:
            book.ext_day.add(order_id)
        return ev

    def _legs(
        self,
        kind: str,
        order_id: str,
        side: str,
        otype: str,
        tif: str,
        price: int,
        notional: int,
        legs: Any,
        tick: int,
    ) -> tuple[list[tuple[str, str, str, int, int]], str | None]:
        """Validate a contingent order's legs: (order id, type, tif, price, stop) each, or the
        reason to reject. The order itself is a LIMIT by quantity (an OCO's GTC or DAY). A
        BRACKET takes a take-profit LIMIT then a STOP_LOSS / STOP_LIMIT, an OTO one exit, both
        on the other side and never able to trade with their own entry (a buy's take-profit
        above its price, its stop below; a sell's the other way round); an OCO one stop on the
        same side, beyond its limit (a sell's stop below the take-profit, a buy's above)."""
        allowed = _LEG_TYPES[kind]
        if (
            otype is not LIMIT
            or notional
            or type(legs) is not list
            or len(legs) != len(allowed)
            or (kind is OCO and tif is not GTC and tif is not DAY)
        ):
            return [], INVALID_LEGS
        out: list[tuple[str, str, str, int, int]] = []
        ids = {order_id}
        buy = side is BUY
        for spec, types in zip(legs, allowed, strict=True):
            if not isinstance(spec, Mapping):
                return [], INVALID_LEGS
            lid = spec.get("order_id")
            lt = _TYPES.get(spec.get("order_type"))  # type: ignore[arg-type]
            lf = _TIFS.get(spec.get("tif"))  # type: ignore[arg-type]
            lp = spec.get("price") or 0
            ls = spec.get("stop_price") or 0
            if (
                type(lid) is not str
                or not lid
                or lid in ids
                or lid in self.seen
                or lid in self.orders
                or lt not in types
                or (lf is not GTC and lf is not DAY)
                or type(lp) is not int
                or type(ls) is not int
            ):
                return [], INVALID_LEGS
            ids.add(lid)
            if lt is LIMIT or lt is STOP_LIMIT:
                if lp <= 0 or lp % tick:
                    return [], INVALID_PRICE
            elif lp:
                return [], INVALID_PRICE
            if lt is not LIMIT:
                if ls <= 0 or ls % tick:
                    return [], INVALID_STOP_PRICE
            elif ls:
                return [], INVALID_STOP_PRICE
            if kind is OCO:
                if (ls >= price) if not buy else (ls <= price):
                    return [], INVALID_LEGS
            elif lt is LIMIT:
                if (lp <= price) if buy else (lp >= price):
                    return [], INVALID_LEGS
            elif (ls >= price) if buy else (ls <= price):
                return [], INVALID_LEGS
            assert lt is not None
            assert lf is not None
            out.append((lid, lt, lf, lp, ls))
        return out, None

    def _linked(
        self,
        book: Book,
        o: Order,
        kind: str,
        specs: list[tuple[str, str, str, int, int]],
        ev: list[Event],
        ts: int,
    ) -> None:
        """Accept a contingent order's legs and run it: a BRACKET / OTO entry goes to the book
        with its legs waiting; an OCO's first order goes in, then its stop for what is left."""
        leg_side = o.side if kind is OCO else (SELL if o.side is BUY else BUY)
        qty = o.quantity if kind is OCO else 0
        legs: list[Order] = []
        for lid, lt, lf, lp, ls in specs:
            self._remember(lid)
            self.seq += 1
            leg = Order(
                lid, o.user_id, o.asset_id, leg_side, lt, lf, qty, lp, ls, 0, o.stp, self.seq, ts
            )
            legs.append(leg)
            ev.append((ACCEPTED, o.asset_id, lid, o.user_id, leg_side, lt, lf, qty, 0, lp, ls, ts))
        g = Group(kind, None, [o, *legs], True) if kind is OCO else Group(kind, o, legs, False)
        o.group = g
        for leg in legs:
            leg.group = g
            book.pending[leg.order_id] = leg
        if kind is not OCO:
            book.add(o, ev, ts)
            return
        book.linking = True
        book.add(o, ev, ts)
        g.lfilled[0] = o.filled
        book.enter_legs(g, o.remaining, ev, ts, False)
        book.linking = False
        book._queue(g)
        book._run_links(ev, ts)

    def restore_group(
        self,
        cmd: Mapping[str, Any],
        order_id: str,
        user_id: str,
        asset_id: str,
        quantity: int,
        price: int,
        stop_price: int,
        filled: int,
        ended: bool,
        order_class: str,
        legs: Any,
        ts: int,
    ) -> list[Event]:
        """A linked group rebuilt from the system of record (NEW_ORDER ``restored`` with
        ``order_class``): the order itself (``filled``; ``ended``: final in the record) and its
        ``legs`` with their ``quantity``, ``filled`` and ``ended``. No ACCEPTED. The group's
        state follows from the record's fills, the one thing settled for sure: a bracket's /
        OTO's exits are active once its entry has filled (for what it filled), an OCO's from
        the start (for its quantity), and every live exit holds what the group's fills left
        unsold (they sell the same shares); a recorded quantity that differs gets RESIZED. A
        group the record shows partly over is ended as the engine would have ended it: an exit
        that ended (or sold everything) ends the others, an exit's fill ends the entry's
        remainder, an entry that ended unfilled takes its waiting exits (PARENT). A group with
        any member still live is a repeat (no events)."""
        kind = _CLASSES.get(order_class)
        book = self.books.get(asset_id)
        ids = [order_id, *_leg_ids(legs)]
        if book is not None and any(i in self.orders or i in book.pending for i in ids):
            return []
        for i in ids:
            if i not in self.seen:
                self._remember(i)
        if book is None:
            return [(REJECTED, asset_id, order_id, user_id, UNKNOWN_ASSET, ts)]
        s = _SIDES.get(cmd.get("side"))  # type: ignore[arg-type]
        t = _TYPES.get(cmd.get("order_type"))  # type: ignore[arg-type]
        f = _TIFS.get(cmd.get("tif"))  # type: ignore[arg-type]
        stp = cmd.get("stp")
        mode = book.config.stp if stp is None else _STPS.get(stp)
        allowed = None if kind is None else _LEG_TYPES[kind]
        if (
            kind is None
            or s is None
            or t is None
            or f is None
            or mode is None
            or allowed is None
            or type(legs) is not list
            or len(legs) != len(allowed)
            or len(set(ids)) != len(ids)
            or len(ids) != len(legs) + 1
            or quantity <= 0
            or not 0 <= filled <= quantity
        ):
            return [(REJECTED, asset_id, order_id, user_id, INVALID_LEGS, ts)]
        leg_side = s if kind is OCO else (SELL if s is BUY else BUY)
        self.seq += 1
        o = Order(order_id, user_id, asset_id, s, t, f, quantity, price, stop_price, 0, mode,
                  self.seq, ts)  # fmt: skip
        o.filled = filled
        o.remaining = 0 if ended else quantity - filled
        members: list[Order] = []
        done: list[bool] = []
        for spec in legs:
            if not isinstance(spec, Mapping):
                return [(REJECTED, asset_id, order_id, user_id, INVALID_LEGS, ts)]
            lt = _TYPES.get(spec.get("order_type"))  # type: ignore[arg-type]
            lf = _TIFS.get(spec.get("tif"))  # type: ignore[arg-type]
            lp = spec.get("price") or 0
            ls = spec.get("stop_price") or 0
            lq = spec.get("quantity") or 0
            lfd = spec.get("filled") or 0
            le = spec.get("ended") or False
            if (
                lt is None
                or lt is TRAILING_STOP
                or lf is None
                or type(lp) is not int
                or type(ls) is not int
                or type(lq) is not int
                or type(lfd) is not int
                or type(le) is not bool
                or lfd < 0
            ):
                return [(REJECTED, asset_id, order_id, user_id, INVALID_LEGS, ts)]
            self.seq += 1
            b = Order(spec["order_id"], user_id, asset_id, leg_side, lt, lf, lq, lp, ls, 0, mode,
                      self.seq, ts)  # fmt: skip
            b.filled = lfd
            members.append(b)
            done.append(le)
        ev: list[Event] = []
        if kind is OCO:
            exits, exits_done = [o, *members], [ended, *done]
            g = Group(kind, None, exits, True)
            activated = quantity
        else:
            exits, exits_done = members, done
            g = Group(kind, o, exits, filled > 0)
            g.pfilled = activated = filled
        sold = sum(b.filled for b in exits)
        g.lfilled = [b.filled for b in exits]
        left = activated - sold
        over = g.active and (left <= 0 or any(exits_done))
        if not g.active and any(exits_done):
            over = True  # a waiting exit ended: the group was cancelled
        for m in [o, *members]:
            m.group = g
        if kind is not OCO:
            if o.remaining and (sold or over):
                ev.append((CANCELLED, asset_id, order_id, user_id, OCO, o.remaining, filled, ts))
                o.remaining = 0
            g.parent = o if o.remaining else None
        for b, b_done in zip(exits, exits_done, strict=True):
            if b_done:
                b.remaining = 0
                continue
            if not g.active:  # waits for its entry's first fill (quantity 0, as accepted)
                b.quantity = b.remaining = 0
                if over:  # its sibling ended: the group was cancelled
                    ev.append((CANCELLED, asset_id, b.order_id, user_id, OCO, 0, 0, ts))
                elif g.parent is None:  # the entry ended with nothing filled
                    ev.append((CANCELLED, asset_id, b.order_id, user_id, PARENT, 0, 0, ts))
                else:
                    book.pending[b.order_id] = b
                continue
            if over:
                rem = max(0, b.quantity - b.filled)
                ev.append((CANCELLED, asset_id, b.order_id, user_id, OCO, rem, b.filled, ts))
                b.remaining = 0
                continue
            recorded = b.quantity
            b.quantity = left + b.filled
            b.remaining = left
            if b.quantity != recorded:
                # Shrunk by a sibling's sale, else sized by the entry's fills (a waiting leg's
                # row shows the entry's quantity until its first ACTIVATED).
                shrunk = b.quantity < recorded and (kind is OCO or sold > 0)
                why = OCO if shrunk or kind is OCO else ACTIVATED
                ev.append((RESIZED, asset_id, b.order_id, user_id, b.quantity, left, why, ts))
        if over or (not g.active and g.parent is None):
            if g.parent is not None:
                p = g.parent
                ev.append(
                    (CANCELLED, asset_id, p.order_id, user_id, OCO, p.remaining, p.filled, ts)
                )
                p.remaining = 0
                g.parent = None
            return ev
        linking = book.linking
        book.linking = True
        for m in [o, *members]:
            if m.remaining:
                book.add(m, ev, ts)
        book.linking = linking
        book._queue(g)
        book._run_links(ev, ts)
        return ev

    def resync(
        self, order_id: str, asset_id: str, filled: int, remaining: int, ts: int = 0
    ) -> list[Event]:
        """RESYNC: the system of record's ``filled`` and ``remaining`` for a live order (the
        reconciler's repair of a drift; PostgreSQL wins). In place, keeping its time priority,
        with no event of its own; ``remaining`` 0 ends it quietly (the record holds it final).
        A linked order's group passes on nothing twice (its counters move with the record's
        fills) and ends as it would have (``Book._link``). An order that is not live: no
        events."""
        o = self.orders.get(order_id)
        if o is None or o.asset_id != asset_id:
            return []
        if filled < 0 or remaining < 0:
            return [(REJECTED, asset_id, order_id, o.user_id, MALFORMED, ts)]
        book = self.books[asset_id]
        df = filled - o.filled
        g = o.group
        if g is not None:
            if g.parent is o:
                g.pfilled += df
            for i, b in enumerate(g.legs):
                if b is o:
                    g.lfilled[i] += df
        if not remaining:
            book._remove(o)
        else:
            book.reduce(o, remaining)  # in place: a LIMIT's level volume follows
        o.filled = filled
        o.quantity = filled + remaining
        ev: list[Event] = []
        if g is not None:
            book._queue(g)
            book._run_links(ev, ts)
        return ev

    def cancel(self, order_id: str, asset_id: str, ts: int = 0) -> list[Event]:
        """CANCEL: the live order's remainder is cancelled (reason USER); a linked order's
        group goes with it (``Book.cancel``), a waiting leg's too."""
        o = self.orders.get(order_id)
        if o is None or o.asset_id != asset_id:
            book = self.books.get(asset_id)
            o = None if book is None else book.pending.get(order_id)
            if o is None:
                return [(CANCEL_REJECTED, asset_id, order_id, UNKNOWN_ORDER, ts)]
        ev: list[Event] = []
        self.books[asset_id].cancel(o, ev, ts)
        return ev

    def session(self, asset_id: str, session: str, ts: int = 0) -> list[Event]:
        """SESSION: EXTENDED at the regular close (orders not flagged extended_hours wait out
        of the book), REGULAR at the regular open (they come back, and may trade)."""
        book = self.books.get(asset_id)
        if book is None:
            return [(REJECTED, asset_id, None, None, UNKNOWN_ASSET, ts)]
        ev: list[Event] = []
        if session == EXTENDED:
            book.enter_extended()
        else:
            book.leave_extended(ev, ts)
        return ev

    def replace(
        self,
        order_id: str,
        asset_id: str,
        replace_id: str,
        quantity: int,
        price: int = 0,
        stop_price: int = 0,
        tif: str = GTC,
        ts: int = 0,
        trail_amount: int = 0,
        trail_bps: int = 0,
    ) -> list[Event]:
        """REPLACE: the live order's terms change atomically (one command, so replay stays
        deterministic). ``quantity`` is the new total (filled included: more than the filled
        quantity); the time in force is GTC or DAY. The order keeps its time priority only when
        the remaining quantity goes down and nothing else changes (price, stop, trail, time in
        force); otherwise it takes a new place, as a new order would, and may trade at once.
        Terms that no longer apply (the stop of an order that has triggered) are ignored. A
        repeated ``replace_id`` is ignored; an order that is no longer live (filled,
        cancelled, unknown) gets REPLACE_REJECTED UNKNOWN_ORDER and nothing changes."""
        if replace_id in self.seen:
            return []
        self._remember(replace_id)
        o = self.orders.get(order_id)
        if o is None or o.asset_id != asset_id:
            return [
                (REPLACE_REJECTED, asset_id, order_id, None, replace_id, UNKNOWN_ORDER, 0, 0, ts)
            ]
        book = self.books[asset_id]
        if o.group is not None:
            return [
                (
                    REPLACE_REJECTED,
                    asset_id,
                    order_id,
                    o.user_id,
                    replace_id,
                    LINKED,
                    o.remaining,
                    o.price,
                    ts,
                )
            ]
        cfg = book.config
        tick = cfg.tick_size
        t = o.order_type
        f = _TIFS.get(tif)
        stop = o.stop_price
        trail, bps = o.trail, o.trail_bps
        reason = None
        if f is not GTC and f is not DAY:
            reason = INVALID_TIF
        elif quantity <= o.filled or quantity % cfg.lot_size:
            reason = INVALID_QUANTITY
        elif t is LIMIT or t is STOP_LIMIT or (t is TRAILING_STOP and o.price):
            if price <= 0 or price % tick:
                reason = INVALID_PRICE
        elif price:
            reason = INVALID_PRICE
        if reason is None and (t is STOP_LOSS or t is STOP_LIMIT):
            if stop_price <= 0 or stop_price % tick:
                reason = INVALID_STOP_PRICE
            stop = stop_price
        elif reason is None and t is TRAILING_STOP:
            if stop_price < 0 or stop_price % tick:
                reason = INVALID_STOP_PRICE
            elif not _trail_ok(trail_amount, trail_bps, tick):
                reason = INVALID_TRAIL
            elif (trail_amount, trail_bps) != (trail, bps):
                trail, bps = trail_amount, trail_bps
                stop = 0
        if reason is not None:
            return [
                (
                    REPLACE_REJECTED,
                    asset_id,
                    order_id,
                    o.user_id,
                    replace_id,
                    reason,
                    o.remaining,
                    o.price,
                    ts,
                )
            ]
        assert f is not None
        remaining = quantity - o.filled
        n = o
        if t is TRAILING_STOP and not stop:  # a new trail: a new stop from the water mark
            water = o.water
            stop = stop_price or o.stop_price
            if water:
                stop = book.trail_stop(o.side, trail, bps, water)
        kept = (
            price == o.price
            and stop == o.stop_price
            and f is o.tif
            and (trail, bps) == (o.trail, o.trail_bps)
            and remaining < o.remaining
        )
        if kept:
            book.reduce(o, remaining)
            o.quantity = quantity
        else:
            book._remove(o)
            self.seq += 1
            n = Order(
                order_id,
                o.user_id,
                asset_id,
                o.side,
                t,
                f,
                quantity,
                price,
                stop,
                0,
                o.stp,
                self.seq,
                ts,
            )
            n.filled = o.filled
            n.remaining = remaining
            n.trail, n.trail_bps, n.water = trail, bps, o.water
            n.ext = o.ext
        ev: list[Event] = [
            (
                REPLACED,
                asset_id,
                order_id,
                n.user_id,
                replace_id,
                quantity,
                remaining,
                price,
                stop,
                f,
                kept,
                ts,
            )
        ]
        if not kept:
            book.add(n, ev, ts)
        return ev

    def expire_day(
        self, asset_id: str, ts: int = 0, regular_only: bool = False, before: int = 0
    ) -> list[Event]:
        """EXPIRE_DAY: every DAY order of the asset ends EXPIRED (``regular_only``: those not
        flagged ``extended_hours``; the others wait for the end of after-hours; ``before``:
        only orders stamped before it, so the command is idempotent per close)."""
        book = self.books.get(asset_id)
        if book is None:
            return [(REJECTED, asset_id, None, None, UNKNOWN_ASSET, ts)]
        ev: list[Event] = []
        book.expire_day(ev, ts, regular_only, before)
        return ev

    def reference_price(self, asset_id: str, price: int, ts: int = 0) -> list[Event]:
        """REFERENCE_PRICE: new collar anchor; may trigger stops."""
        book = self.books.get(asset_id)
        if book is None:
            return [(REJECTED, asset_id, None, None, UNKNOWN_ASSET, ts)]
        if price <= 0:
            return [(REJECTED, asset_id, None, None, INVALID_PRICE, ts)]
        ev: list[Event] = []
        book.reference_price(price, ev, ts)
        return ev

    def add_asset(
        self,
        asset_id: str,
        price_scale: int,
        tick_size: int,
        qty_scale: int,
        lot_size: int = 1,
        collar_bps: int = DEFAULT_COLLAR_BPS,
        stp: str = CANCEL_NEWEST,
        ts: int = 0,
        fill_seq: int = 0,
    ) -> list[Event]:
        """ADD_ASSET: create the asset's book, or update its configuration. Scales cannot
        change while the asset has open orders (their integers would change meaning).
        ``fill_seq``: the asset's fills so far (its next fill id is above it; a book rebuilt
        after its state was lost must not reuse the ids of fills already settled)."""
        mode = _STPS.get(stp)
        if (
            not asset_id
            or len(asset_id) > 64
            or not asset_id.isprintable()  # it becomes part of Redis keys and channels
            or not 0 <= price_scale <= 18
            or not 0 <= qty_scale <= 18
            or tick_size <= 0
            or lot_size <= 0
            or collar_bps <= 0
            or fill_seq < 0
            or mode is None
        ):
            return [(REJECTED, asset_id, None, None, INVALID_CONFIG, ts)]
        book = self.books.get(asset_id)
        if book is None:
            cfg = AssetConfig(price_scale, tick_size, qty_scale, lot_size, collar_bps, mode)
            self.books[asset_id] = Book(asset_id, cfg, self.orders)
        else:
            cfg = book.config
            if (cfg.price_scale, cfg.qty_scale) != (price_scale, qty_scale) and book.open_orders():
                return [(REJECTED, asset_id, None, None, SCALE_CHANGE_WITH_OPEN_ORDERS, ts)]
            cfg.price_scale = price_scale
            cfg.tick_size = tick_size
            cfg.qty_scale = qty_scale
            cfg.lot_size = lot_size
            cfg.collar_bps = collar_bps
            cfg.stp = mode
        book = self.books[asset_id]
        book.trade_seq = max(book.trade_seq, fill_seq)
        return [
            (
                ASSET_CONFIGURED,
                asset_id,
                price_scale,
                tick_size,
                qty_scale,
                lot_size,
                collar_bps,
                mode,
                ts,
            )
        ]

    def split(
        self,
        asset_id: str,
        split_id: str,
        numerator: int,
        denominator: int,
        ts: int = 0,
        split_seq: int = 0,
    ) -> list[Event]:
        """SPLIT: a numerator-for-denominator stock split adjusts every live order of the asset
        and the book's prices (``core/split.py``). A repeated ``split_id`` is ignored (no
        events); a ratio that is not two different positive integers is REJECTED
        INVALID_RATIO. ``split_seq`` (the asset's split count after it, > 0) is remembered
        with the ratio: commands stamped with an older count catch up (``_catch_up_*``)."""
        if split_id in self.seen:
            return []
        self._remember(split_id)
        book = self.books.get(asset_id)
        if book is None:
            return [(REJECTED, asset_id, None, None, UNKNOWN_ASSET, ts)]
        if not 0 < numerator <= MAX_SPLIT_TERM or not 0 < denominator <= MAX_SPLIT_TERM:
            return [(REJECTED, asset_id, None, None, INVALID_RATIO, ts)]
        if numerator == denominator:
            return [(REJECTED, asset_id, None, None, INVALID_RATIO, ts)]
        ev: list[Event] = []
        filled_before = apply_split(book, split_id, numerator, denominator, ev, ts)
        if split_seq > 0:
            records = self.split_filled.setdefault(asset_id, {})
            for seq in sorted(records):
                older = records[seq]
                gone = [o for o in older if o not in self.orders and o not in book.pending]
                for o in gone:
                    del older[o]
            records[split_seq] = filled_before
            self.splits.setdefault(asset_id, []).append((split_seq, numerator, denominator))
        else:  # a split without a count: the records' quantities are no longer the orders'
            self.split_filled.pop(asset_id, None)
        return ev

    def _missed(self, asset_id: str, stamp: int) -> list[tuple[int, int]]:
        """The ratios of the asset's splits a command stamped with split count ``stamp``
        has not seen, oldest first."""
        return [(n, d) for seq, n, d in self.splits.get(asset_id, ()) if seq > stamp]

    def _catch_up_order(
        self, cmd: Mapping[str, Any], asset_id: str, stamp: int, q: int, p: int, sp: int, ta: int
    ) -> tuple[int, int, int, int, Any]:
        """A stamped NEW_ORDER's terms (and its legs') after the splits it missed."""
        legs = cmd.get("legs")
        book = self.books.get(asset_id)
        missed = self._missed(asset_id, stamp)
        if book is None or not missed:
            return q, p, sp, ta, legs
        lot, tick = book.config.lot_size, book.config.tick_size
        buy = cmd.get("side") == BUY
        q, p, sp, ta = catch_up(missed, buy, lot, tick, q, p, sp, ta)
        kind = cmd.get("order_class")
        if type(legs) is list and type(kind) is str and kind in _CLASSES:
            leg_buy = buy if kind == OCO else not buy
            out: list[Any] = []
            for spec in legs:
                if isinstance(spec, Mapping):
                    spec = dict(spec)
                    lp = spec["price"] if type(spec.get("price")) is int else 0
                    ls = spec["stop_price"] if type(spec.get("stop_price")) is int else 0
                    _, cp, cs, _ = catch_up(missed, leg_buy, lot, tick, 0, lp, ls, 0)
                    if lp > 0:
                        spec["price"] = cp
                    if ls > 0:
                        spec["stop_price"] = cs
                out.append(spec)
            legs = out
        return q, p, sp, ta, legs

    def _catch_up_replace(
        self, order_id: str, asset_id: str, stamp: int, q: int, p: int, sp: int, ta: int
    ) -> tuple[int, int, int, int]:
        """A stamped REPLACE's new terms after the splits it missed (by its order's side)."""
        o = self.orders.get(order_id)
        missed = self._missed(asset_id, stamp)
        if o is None or o.asset_id != asset_id or not missed:
            return q, p, sp, ta
        cfg = self.books[asset_id].config
        records = self.split_filled.get(asset_id, {})
        filled = [
            records[seq].get(order_id, -1) if seq in records else -1
            for seq, _, _ in self.splits.get(asset_id, ())
            if seq > stamp
        ]
        return catch_up(missed, o.side is BUY, cfg.lot_size, cfg.tick_size, q, p, sp, ta, filled)

    def _remember(self, order_id: str) -> None:
        self.seen.add(order_id)
        self.seen_fifo.append(order_id)
        if len(self.seen_fifo) > self.dedup_window:
            self.seen.discard(self.seen_fifo.popleft())

    # ------------------------------------------------------------------ wire commands

    def apply(self, cmd: Mapping[str, Any]) -> list[Event]:
        """Apply one decoded wire command (see ``matching/README.md``). Malformed commands
        yield a REJECTED event with reason MALFORMED; this never raises."""
        try:
            kind = cmd["cmd"]
            g = cmd.get
            ts = g("ts") or 0
            if kind == NEW_ORDER:
                oid = g("order_id")
                if type(oid) is str and (
                    oid in self.orders or (oid in self.seen and g("restored") is not True)
                ):
                    return []  # the first NEW_ORDER with an id decides; repeats are ignored
                uid = cmd["user_id"]
                aid = cmd["asset_id"]
                q = g("quantity") or 0
                p = g("price") or 0
                sp = g("stop_price") or 0
                n = g("notional") or 0
                ta = g("trail_amount") or 0
                tb = g("trail_bps") or 0
                ext = g("extended_hours") or False
                restored = g("restored") or False
                done = g("filled") or 0
                oc = g("order_class")
                legs = g("legs")
                if (
                    type(ext) is not bool
                    or type(restored) is not bool
                    or type(done) is not int
                    or type(q) is not int
                    or type(p) is not int
                    or type(sp) is not int
                    or type(n) is not int
                    or type(ta) is not int
                    or type(tb) is not int
                    or type(ts) is not int
                    or type(oid) is not str
                    or type(uid) is not str
                    or type(aid) is not str
                    or not oid
                    or not uid
                    or not aid
                ):
                    if type(oid) is str and oid:
                        self._remember(oid)
                    return [_malformed(cmd, MALFORMED)]
                stamp = g("split_seq")  # the asset's split count when it was planned
                if stamp is not None and not restored:
                    if type(stamp) is not int or stamp < 0:
                        self._remember(oid)
                        return [_malformed(cmd, MALFORMED)]
                    if aid in self.splits:
                        q, p, sp, ta, legs = self._catch_up_order(cmd, aid, stamp, q, p, sp, ta)
                if restored and oc is not None and oc != SIMPLE:
                    ended = g("ended") or False
                    if type(ended) is not bool:
                        raise TypeError("ended")
                    return self.restore_group(
                        cmd, oid, uid, aid, q, p, sp, done, ended, oc, legs, ts
                    )
                return self.new_order(
                    oid,
                    uid,
                    aid,
                    cmd["side"],
                    cmd["order_type"],
                    cmd["tif"],
                    q,
                    p,
                    sp,
                    ts,
                    n,
                    g("stp"),
                    ta,
                    tb,
                    ext,
                    done,
                    restored,
                    oc,
                    legs,
                )
            if type(ts) is not int:
                return [_malformed(cmd, MALFORMED)]
            if kind == CANCEL:
                return self.cancel(_str(cmd, "order_id"), _str(cmd, "asset_id"), ts)
            if kind == REPLACE:
                oid, aid = _str(cmd, "order_id"), _str(cmd, "asset_id")
                rid = _str(cmd, "replace_id")
                q, p, sp = _int(cmd, "quantity"), _int(cmd, "price"), _int(cmd, "stop_price")
                ta = _int(cmd, "trail_amount")
                stamp = cmd.get("split_seq")
                if stamp is not None:
                    if type(stamp) is not int or stamp < 0:
                        raise TypeError("split_seq")
                    if aid in self.splits:
                        q, p, sp, ta = self._catch_up_replace(oid, aid, stamp, q, p, sp, ta)
                tif = _str(cmd, "tif")
                return self.replace(oid, aid, rid, q, p, sp, tif, ts, ta, _int(cmd, "trail_bps"))
            if kind == EXPIRE_DAY:
                session = _opt_str(cmd, "session")
                if session is not None and session != REGULAR:
                    return [_malformed(cmd, MALFORMED)]
                return self.expire_day(
                    _str(cmd, "asset_id"), ts, session is not None, _int(cmd, "before")
                )
            if kind == SESSION:
                which = _str(cmd, "session")
                if which != EXTENDED and which != REGULAR:
                    return [_malformed(cmd, MALFORMED)]
                return self.session(_str(cmd, "asset_id"), which, ts)
            if kind == REFERENCE_PRICE:
                return self.reference_price(_str(cmd, "asset_id"), _int(cmd, "price"), ts)
            if kind == SPLIT:
                return self.split(
                    _str(cmd, "asset_id"),
                    _str(cmd, "split_id"),
                    _int(cmd, "numerator"),
                    _int(cmd, "denominator"),
                    ts,
                    _int(cmd, "split_seq"),
                )
            if kind == RESYNC:
                return self.resync(
                    _str(cmd, "order_id"),
                    _str(cmd, "asset_id"),
                    _int(cmd, "filled"),
                    _int(cmd, "remaining"),
                    ts,
                )
            if kind == ADD_ASSET:
                lot = cmd.get("lot_size")
                collar = cmd.get("collar_bps")
                return self.add_asset(
                    _str(cmd, "asset_id"),
                    _int(cmd, "price_scale"),
                    _int(cmd, "tick_size"),
                    _int(cmd, "qty_scale"),
                    1 if lot is None else _int(cmd, "lot_size"),
                    DEFAULT_COLLAR_BPS if collar is None else _int(cmd, "collar_bps"),
                    _opt_str(cmd, "stp") or CANCEL_NEWEST,
                    ts,
                    _int(cmd, "fill_seq"),
                )
            return [_malformed(cmd, UNKNOWN_COMMAND)]
        except (KeyError, TypeError, ValueError):
            return [_malformed(cmd, MALFORMED)]

    # ------------------------------------------------------------------ queries

    def book(self, asset_id: str) -> Book | None:
        return self.books.get(asset_id)

    def depth(
        self, asset_id: str, levels: int = 10
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """Best ``levels`` bids and asks of an asset: (price, quantity, orders), best first."""
        book = self.books.get(asset_id)
        if book is None:
            return [], []
        return book.depth(levels)


def _leg_ids(legs: Any) -> list[str]:
    """The usable order ids of a contingent order's legs (to reject them with it)."""
    if type(legs) is not list:
        return []
    out: list[str] = []
    for spec in legs:
        lid = spec.get("order_id") if isinstance(spec, Mapping) else None
        if type(lid) is str and lid and lid not in out:
            out.append(lid)
    return out


def _trail_ok(amount: int, bps: int, tick: int) -> bool:
    """Exactly one trail: an amount on the tick grid, or 1..9999 hundredths of a percent."""
    if amount:
        return not bps and amount > 0 and not amount % tick
    return 0 < bps < BPS


def _int(cmd: Mapping[str, Any], key: str) -> int:
    """An optional integer field: absent or null → 0; anything but an int → TypeError."""
    v = cmd.get(key)
    if v is None:
        return 0
    if type(v) is not int:
        raise TypeError(key)
    return v


def _str(cmd: Mapping[str, Any], key: str) -> str:
    v = cmd[key]
    if type(v) is not str or not v:
        raise TypeError(key)
    return v


def _opt_str(cmd: Mapping[str, Any], key: str) -> str | None:
    v = cmd.get(key)
    if v is not None and type(v) is not str:
        raise TypeError(key)
    return v


def _malformed(cmd: Any, reason: str) -> Event:
    """REJECTED for a command we cannot read (CANCEL_REJECTED for a cancel: the order it
    names is not affected); keeps whatever ids are usable."""
    get = cmd.get if isinstance(cmd, Mapping) else (lambda _k: None)
    ts = get("ts")
    if get("cmd") == REPLACE:
        return (
            REPLACE_REJECTED,
            _str_or_none(get("asset_id")),
            _str_or_none(get("order_id")),
            None,
            _str_or_none(get("replace_id")),
            reason,
            0,
            0,
            ts if type(ts) is int else 0,
        )
    if get("cmd") == CANCEL:
        return (
            CANCEL_REJECTED,
            _str_or_none(get("asset_id")),
            _str_or_none(get("order_id")),
            reason,
            ts if type(ts) is int else 0,
        )
    return (
        REJECTED,
        _str_or_none(get("asset_id")),
        _str_or_none(get("order_id")),
        _str_or_none(get("user_id")),
        reason,
        ts if type(ts) is int else 0,
    )


def _str_or_none(v: Any) -> str | None:
    return v if type(v) is str else None
