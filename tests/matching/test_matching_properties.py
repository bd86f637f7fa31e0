"""Property tests: the engine against a deliberately naive reference model.

The model keeps every resting order in one flat list and sorts candidates by (price, arrival)
on every match; it shares the engine's *rules* (documented in matching/README.md) but none of
its data structures (levels, lazy deletion, heaps, sorted keys, snapshots). Random command
sequences must give identical events, conserve quantity, never leave a crossed book, never
fill a FOK order partially, and replay identically from a snapshot.

Linked orders (bracket / OTO / OCO) and the extended session are modelled the same way: a
group's members are plain objects, a group is visited (in the order it was first queued) once
the command's matching is done, and parked orders are flagged, not moved.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import Event
from matching.wire import dumps, encode_event, event_to_wire

BPS = 10_000

# ---------------------------------------------------------------------- the reference model


@dataclass(eq=False)  # identity, as a plain object: the model removes orders by identity
class MOrder:
    oid: str
    uid: str
    asset: str
    side: str
    type: str
    tif: str
    qty: int
    rem: int
    filled: int
    price: int
    stop: int
    notional: int
    stp: str
    seq: int
    waiting: bool
    arrival: int
    trail: int = 0
    bps: int = 0
    water: int = 0
    ext: bool = False
    parked: bool = False
    dayseq: int = 0
    group: MGroup | None = None


@dataclass(eq=False)
class MGroup:
    kind: str
    parent: MOrder | None
    legs: list[MOrder]
    active: bool
    pfilled: int = 0
    lfilled: list[int] | None = None
    queued: bool = False


STOPS = ("STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP")
NO_WATER = 1 << 62


def trail_ok(amount: int, bps: int, tick: int) -> bool:
    if amount:
        return not bps and amount > 0 and amount % tick == 0
    return 0 < bps < BPS


def trail_stop(side: str, trail: int, bps: int, water: int, tick: int) -> int:
    if side == "SELL":
        s = water - trail if trail else water * (BPS - bps) // BPS
        s -= s % tick
        return max(s, tick)
    s = water + trail if trail else -(-water * (BPS + bps) // BPS)
    return s + (-s % tick)


class Model:
    """Flat lists, sorts everywhere, no cleverness."""

    def __init__(self) -> None:
        self.assets: dict[str, dict[str, Any]] = {}
        self.live: dict[str, MOrder] = {}  # resting and waiting-stop orders
        self.seen: set[str] = set()
        self.seq = 0
        self.arrival = 0  # when an order starts resting (time priority)
        self.dayclock = 0  # when a DAY order first went live (EXPIRE_DAY's order)
        self.pending: dict[str, MOrder] = {}  # legs waiting for their entry's first fill
        self.links: list[MGroup] = []
        self.linking = False
        self.extended: set[str] = set()  # assets in the extended session
        self.splits: dict[str, list[tuple[int, Fraction]]] = {}  # (split count, ratio)
        # Each order's filled quantity before each split, by asset and split count.
        self.split_filled: dict[str, dict[int, dict[str, int]]] = {}

    # commands ---------------------------------------------------------

    def add_asset(
        self, a: str, ps: int, tick: int, qs: int, lot: int, collar: int, stp: str, ts: int
    ) -> list[Event]:
        if a in self.assets:
            cfg = self.assets[a]
            has_orders = any(o.asset == a for o in self.live.values())
            if (cfg["ps"], cfg["qs"]) != (ps, qs) and has_orders:
                return [("REJECTED", a, None, None, "SCALE_CHANGE_WITH_OPEN_ORDERS", ts)]
            cfg.update(ps=ps, tick=tick, qs=qs, lot=lot, collar=collar, stp=stp)
        else:
            self.assets[a] = dict(
                ps=ps,
                tick=tick,
                qs=qs,
                lot=lot,
                collar=collar,
                stp=stp,
                last=0,
                ref=0,
                mark=0,
                trades=0,
            )
            self.assets[a]["ps"] = ps
        return [("ASSET_CONFIGURED", a, ps, tick, qs, lot, collar, stp, ts)]

    def new_order(
        self,
        oid: str,
        uid: str,
        a: str,
        side: str,
        otype: str,
        tif: str,
        qty: int,
        price: int,
        stop: int,
        ts: int,
        notional: int = 0,
        stp: str | None = None,
        trail: int = 0,
        bps: int = 0,
        ext: bool = False,
        oclass: Any = None,
        legs: Any = None,
    ) -> list[Event]:
        if oid in self.seen:
            return []
        self.seen.add(oid)
        if a not in self.assets:
            return [("REJECTED", a, oid, uid, "UNKNOWN_ASSET", ts)]
        cfg = self.assets[a]
        mode = stp or cfg["stp"]
        reason = None
        if side not in ("BUY", "SELL"):
            reason = "INVALID_SIDE"
        elif otype not in ("MARKET", "LIMIT", "STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP"):
            reason = "INVALID_ORDER_TYPE"
        elif tif not in ("GTC", "DAY", "IOC", "FOK"):
            reason = "INVALID_TIF"
        elif notional:
            if notional < 0 or qty or otype != "MARKET" or side != "BUY" or tif == "FOK":
                reason = "INVALID_NOTIONAL"
        elif qty <= 0 or qty % cfg["lot"]:
            reason = "INVALID_QUANTITY"
        if reason is None:
            if otype in ("LIMIT", "STOP_LIMIT"):
                if price <= 0 or price % cfg["tick"]:
                    reason = "INVALID_PRICE"
            elif otype == "TRAILING_STOP":
                if price and (price < 0 or price % cfg["tick"] or side != "BUY"):
                    reason = "INVALID_PRICE"
            elif price:
                reason = "INVALID_PRICE"
        if reason is None:
            if otype in ("STOP_LOSS", "STOP_LIMIT"):
                if stop <= 0 or stop % cfg["tick"]:
                    reason = "INVALID_STOP_PRICE"
            elif otype == "TRAILING_STOP":
                if stop < 0 or stop % cfg["tick"] or not (stop or cfg["mark"]):
                    reason = "INVALID_STOP_PRICE"
            elif stop:
                reason = "INVALID_STOP_PRICE"
        if reason is None:
            if otype == "TRAILING_STOP":
                if not trail_ok(trail, bps, cfg["tick"]):
                    reason = "INVALID_TRAIL"
            elif trail or bps:
                reason = "INVALID_TRAIL"
        kind = None
        specs: list[tuple[str, str, str, int, int]] = []
        if (oclass is not None and oclass != "SIMPLE") or legs is not None:
            kind = oclass if oclass in ("BRACKET", "OTO", "OCO") else None
            if reason is None:
                if kind is None:
                    reason = "INVALID_LEGS"
                else:
                    specs, reason = self._legs(
                        kind, oid, side, otype, tif, price, notional, legs, cfg["tick"]
                    )
            if reason is not None:
                out: list[Event] = [("REJECTED", a, oid, uid, reason, ts)]
                ids: list[str] = []
                for spec in legs if isinstance(legs, list) else []:
                    lid = spec.get("order_id") if isinstance(spec, dict) else None
                    if isinstance(lid, str) and lid and lid not in ids:
                        ids.append(lid)
                for lid in ids:
                    if lid not in self.seen:
                        self.seen.add(lid)
                        out.append(("REJECTED", a, lid, uid, reason, ts))
                return out
        if reason:
            return [("REJECTED", a, oid, uid, reason, ts)]
        self.seq += 1
        o = MOrder(
            oid=oid,
            uid=uid,
            asset=a,
            side=side,
            type=otype,
            tif=tif,
            qty=qty,
            rem=qty,
            filled=0,
            price=price,
            stop=stop,
            notional=notional,
            stp=mode,
            seq=self.seq,
            waiting=False,
            arrival=0,
            trail=trail,
            bps=bps,
        )
        if otype == "TRAILING_STOP" and cfg["mark"]:
            o.water = cfg["mark"]
            o.stop = stop = trail_stop(side, trail, bps, o.water, cfg["tick"])
        ev: list[Event] = [
            ("ACCEPTED", a, oid, uid, side, otype, tif, qty, notional, price, stop, ts)
        ]
        o.ext = bool(ext)
        if not o.ext and a in self.extended and (otype == "MARKET" or tif in ("IOC", "FOK")):
            ev.append(("CANCELLED", a, oid, uid, "SESSION_CLOSED", qty, 0, ts))
            for spec in specs:
                self.seen.add(spec[0])
                ev.append(("REJECTED", a, spec[0], uid, "SESSION_CLOSED", ts))
            return ev
        if kind is not None:
            self._linked(o, kind, specs, ev, ts)
            return ev
        self._add(o, ev, ts)
        return ev

    def _add(self, o: MOrder, ev: list[Event], ts: int) -> None:
        a = o.asset
        cfg = self.assets[a]
        if a in self.extended and not o.ext:
            o.parked = True
            self._go_live(o)
            return
        if o.type in STOPS:
            o.waiting = True
            self._go_live(o)
            if cfg["mark"]:
                self._stops(a, ev, ts)
                self._run_links_if(ev, ts)
            return
        trades = cfg["trades"]
        f0 = o.filled
        self._take(o, ev, ts)
        if o.group is not None and (o.filled != f0 or not o.rem):
            self._queue(o.group)
        if cfg["trades"] != trades:
            self._stops(a, ev, ts)
        self._run_links_if(ev, ts)

    def _go_live(self, o: MOrder) -> None:
        self.live[o.oid] = o
        if not o.dayseq:
            self.dayclock += 1
            o.dayseq = self.dayclock

    # linked orders ----------------------------------------------------

    def _legs(
        self,
        kind: str,
        oid: str,
        side: str,
        otype: str,
        tif: str,
        price: int,
        notional: int,
        legs: Any,
        tick: int,
    ) -> tuple[list[tuple[str, str, str, int, int]], str | None]:
        table: dict[str, list[tuple[str, ...]]] = {
            "BRACKET": [("LIMIT",), ("STOP_LOSS", "STOP_LIMIT")],
            "OTO": [("LIMIT", "STOP_LOSS", "STOP_LIMIT")],
            "OCO": [("STOP_LOSS", "STOP_LIMIT")],
        }
        allowed = table[kind]
        if (
            otype != "LIMIT"
            or notional
            or not isinstance(legs, list)
            or len(legs) != len(allowed)
            or (kind == "OCO" and tif not in ("GTC", "DAY"))
        ):
            return [], "INVALID_LEGS"
        out: list[tuple[str, str, str, int, int]] = []
        ids = {oid}
        for spec, types in zip(legs, allowed, strict=True):
            if not isinstance(spec, dict):
                return [], "INVALID_LEGS"
            lid, lt, lf = spec.get("order_id"), spec.get("order_type"), spec.get("tif")
            lp, ls = spec.get("price") or 0, spec.get("stop_price") or 0
            if (
                not isinstance(lid, str)
                or not lid
                or lid in ids
                or lid in self.seen
                or lt not in types
                or lf not in ("GTC", "DAY")
                or type(lp) is not int
                or type(ls) is not int
            ):
                return [], "INVALID_LEGS"
            ids.add(lid)
            if lt in ("LIMIT", "STOP_LIMIT"):
                if lp <= 0 or lp % tick:
                    return [], "INVALID_PRICE"
            elif lp:
                return [], "INVALID_PRICE"
            if lt != "LIMIT":
                if ls <= 0 or ls % tick:
                    return [], "INVALID_STOP_PRICE"
            elif ls:
                return [], "INVALID_STOP_PRICE"
            buy = side == "BUY"
            if kind == "OCO":
                bad = ls <= price if buy else ls >= price
            elif lt == "LIMIT":
                bad = lp <= price if buy else lp >= price
            else:
                bad = ls >= price if buy else ls <= price
            if bad:
                return [], "INVALID_LEGS"
            out.append((lid, lt, lf, lp, ls))
        return out, None

    def _linked(self, o: MOrder, kind: str, specs: list[Any], ev: list[Event], ts: int) -> None:
        leg_side = o.side if kind == "OCO" else ("SELL" if o.side == "BUY" else "BUY")
        qty = o.qty if kind == "OCO" else 0
        legs = []
        for lid, lt, lf, lp, ls in specs:
            self.seen.add(lid)
            self.seq += 1
            leg = MOrder(
                oid=lid,
                uid=o.uid,
                asset=o.asset,
                side=leg_side,
                type=lt,
                tif=lf,
                qty=qty,
                rem=qty,
                filled=0,
                price=lp,
                stop=ls,
                notional=0,
                stp=o.stp,
                seq=self.seq,
                waiting=False,
                arrival=0,
            )
            legs.append(leg)
            ev.append(("ACCEPTED", o.asset, lid, o.uid, leg_side, lt, lf, qty, 0, lp, ls, ts))
        g = MGroup(kind, None, [o, *legs], True) if kind == "OCO" else MGroup(kind, o, legs, False)
        g.lfilled = [0] * len(g.legs)
        o.group = g
        for leg in legs:
            leg.group = g
            self.pending[leg.oid] = leg
        if kind != "OCO":
            self._add(o, ev, ts)
            return
        self.linking = True
        self._add(o, ev, ts)
        g.lfilled[0] = o.filled
        self._enter_legs(g, o.rem, ev, ts, False)
        self.linking = False
        self._queue(g)
        self._run_links(ev, ts)

    def _queue(self, g: MGroup) -> None:
        if not g.queued:
            g.queued = True
            self.links.append(g)

    def _run_links_if(self, ev: list[Event], ts: int) -> None:
        if self.links and not self.linking:
            self._run_links(ev, ts)

    def _run_links(self, ev: list[Event], ts: int) -> None:
        self.linking = True
        while self.links:
            g = self.links.pop(0)
            g.queued = False
            self._link(g, ev, ts)
        self.linking = False

    def _kill(self, o: MOrder, reason: str, ev: list[Event], ts: int) -> None:
        if o.oid in self.pending:
            del self.pending[o.oid]
        elif o.rem:
            del self.live[o.oid]
        else:
            return
        ev.append(("CANCELLED", o.asset, o.oid, o.uid, reason, o.rem, o.filled, ts))
        o.rem = 0

    def _enter_legs(self, g: MGroup, q: int, ev: list[Event], ts: int, announce: bool) -> None:
        linking = self.linking
        self.linking = True
        assert g.lfilled is not None
        for i, b in enumerate(g.legs):
            if b.oid not in self.pending:
                continue
            if not q:
                self._kill(b, "OCO", ev, ts)
                continue
            del self.pending[b.oid]
            if announce:
                b.qty = b.rem = q
                ev.append(("RESIZED", b.asset, b.oid, b.uid, q, q, "ACTIVATED", ts))
            elif b.rem != q:
                b.qty -= b.rem - q
                b.rem = q
                ev.append(("RESIZED", b.asset, b.oid, b.uid, b.qty, q, "OCO", ts))
            self._add(b, ev, ts)
            g.lfilled[i] = b.filled
            q = b.rem
            p = g.parent
            if b.filled and p is not None and p.rem:
                self._kill(p, "OCO", ev, ts)
        self.linking = linking

    def _link(self, g: MGroup, ev: list[Event], ts: int) -> None:
        assert g.lfilled is not None
        p = g.parent
        if p is not None and p.filled > g.pfilled:
            d = p.filled - g.pfilled
            g.pfilled = p.filled
            if g.active:
                for b in g.legs:
                    if b.rem:
                        b.qty += d
                        b.rem += d
                        ev.append(("RESIZED", b.asset, b.oid, b.uid, b.qty, b.rem, "ACTIVATED", ts))
            else:
                g.active = True
                self._enter_legs(g, d, ev, ts, True)
        for i, a in enumerate(g.legs):
            d = a.filled - g.lfilled[i]
            if d <= 0:
                continue
            g.lfilled[i] = a.filled
            for b in g.legs:
                if b is a or not b.rem or b.oid in self.pending:
                    continue
                if b.rem > d:
                    b.qty -= d
                    b.rem -= d
                    ev.append(("RESIZED", b.asset, b.oid, b.uid, b.qty, b.rem, "OCO", ts))
                else:
                    self._kill(b, "OCO", ev, ts)
            p = g.parent
            if p is not None and p.rem:
                self._kill(p, "OCO", ev, ts)
        p = g.parent
        if p is not None and not p.rem:
            g.parent = None
            if not g.active:
                for b in g.legs:
                    self._kill(b, "PARENT", ev, ts)
                return
        if g.active and any(not b.rem for b in g.legs):
            for b in g.legs:
                self._kill(b, "OCO", ev, ts)
            p = g.parent
            g.parent = None
            if p is not None:
                self._kill(p, "OCO", ev, ts)

    def session(self, a: str, which: str, ts: int) -> list[Event]:
        if a not in self.assets:
            return [("REJECTED", a, None, None, "UNKNOWN_ASSET", ts)]
        ev: list[Event] = []
        if which == "EXTENDED":
            if a not in self.extended:
                self.extended.add(a)
                for o in self.live.values():
                    if o.asset == a and not o.ext:
                        o.parked = True
        elif a in self.extended:
            self.extended.discard(a)
            back = sorted(
                (o for o in self.live.values() if o.asset == a and o.parked),
                key=lambda o: o.seq,
            )
            for o in back:
                if o.oid not in self.live:
                    continue  # a linked order taken along by one that came back
                o.parked = False
                del self.live[o.oid]
                self._add(o, ev, ts)
        return ev

    def cancel(self, oid: str, a: str, ts: int, reason: str = "USER") -> list[Event]:
        o = self.live.get(oid)
        if o is None or o.asset != a:
            o = self.pending.get(oid)
            if o is None or o.asset != a:
                return [("CANCEL_REJECTED", a, oid, "UNKNOWN_ORDER", ts)]
            del self.pending[oid]
        else:
            del self.live[oid]
        ev: list[Event] = [("CANCELLED", a, oid, o.uid, reason, o.rem, o.filled, ts)]
        o.rem = 0
        g = o.group
        if g is not None:
            reason = "PARENT" if o is g.parent else "OCO"
            p = g.parent
            g.parent = None
            if p is not None and p is not o:
                self._kill(p, reason, ev, ts)
            for b in g.legs:
                if b is not o:
                    self._kill(b, reason, ev, ts)
        return ev

    def replace(
        self,
        oid: str,
        a: str,
        rid: str,
        qty: int,
        price: int,
        stop: int,
        tif: str,
        ts: int,
        trail: int,
        bps: int,
    ) -> list[Event]:
        if rid in self.seen:
            return []
        self.seen.add(rid)
        o = self.live.get(oid)
        if o is None or o.asset != a:
            return [("REPLACE_REJECTED", a, oid, None, rid, "UNKNOWN_ORDER", 0, 0, ts)]
        if o.group is not None:
            return [("REPLACE_REJECTED", a, oid, o.uid, rid, "LINKED", o.rem, o.price, ts)]
        cfg = self.assets[a]
        tick = cfg["tick"]
        t = o.type
        new_stop, new_trail, new_bps = o.stop, o.trail, o.bps
        reason = None
        if tif not in ("GTC", "DAY"):
            reason = "INVALID_TIF"
        elif qty <= o.filled or qty % cfg["lot"]:
            reason = "INVALID_QUANTITY"
        elif t in ("LIMIT", "STOP_LIMIT") or (t == "TRAILING_STOP" and o.price):
            if price <= 0 or price % tick:
                reason = "INVALID_PRICE"
        elif price:
            reason = "INVALID_PRICE"
        if reason is None and t in ("STOP_LOSS", "STOP_LIMIT"):
            if stop <= 0 or stop % tick:
                reason = "INVALID_STOP_PRICE"
            new_stop = stop
        elif reason is None and t == "TRAILING_STOP":
            if stop < 0 or stop % tick:
                reason = "INVALID_STOP_PRICE"
            elif not trail_ok(trail, bps, tick):
                reason = "INVALID_TRAIL"
            elif (trail, bps) != (o.trail, o.bps):
                new_trail, new_bps = trail, bps
                if o.water:
                    new_stop = trail_stop(o.side, trail, bps, o.water, tick)
                else:
                    new_stop = stop or o.stop
        if reason:
            return [("REPLACE_REJECTED", a, oid, o.uid, rid, reason, o.rem, o.price, ts)]
        rem = qty - o.filled
        kept = (
            price == o.price
            and new_stop == o.stop
            and tif == o.tif
            and (new_trail, new_bps) == (o.trail, o.bps)
            and rem < o.rem
        )
        ev: list[Event] = [
            ("REPLACED", a, oid, o.uid, rid, qty, rem, price, new_stop, tif, kept, ts)
        ]
        if kept:
            o.rem, o.qty = rem, qty
            return ev
        del self.live[oid]
        o.rem = 0
        self.seq += 1
        n = MOrder(
            oid=oid,
            uid=o.uid,
            asset=a,
            side=o.side,
            type=t,
            tif=tif,
            qty=qty,
            rem=rem,
            filled=o.filled,
            price=price,
            stop=new_stop,
            notional=0,
            stp=o.stp,
            seq=self.seq,
            waiting=False,
            arrival=0,
            trail=new_trail,
            bps=new_bps,
            water=o.water,
            ext=o.ext,
        )
        self._add(n, ev, ts)
        return ev

    def split(self, a: str, sid: str, n: int, d: int, ts: int, count: int = 0) -> list[Event]:
        """Quantities x n/d down to the lot; limits / (n/d) in the customer's favour (a buy's
        down, a sell's up), stops away from the market (a sell's down, a buy's up); marks
        down; resting orders re-ranked by (old price, old arrival)."""
        if sid in self.seen:
            return []
        self.seen.add(sid)
        if a not in self.assets:
            return [("REJECTED", a, None, None, "UNKNOWN_ASSET", ts)]
        if not (0 < n <= 10**6 and 0 < d <= 10**6) or n == d:
            return [("REJECTED", a, None, None, "INVALID_RATIO", ts)]
        cfg = self.assets[a]
        lot: int = cfg["lot"]
        tick: int = cfg["tick"]
        r = Fraction(n, d)

        def qty(q: int) -> int:
            return math.floor(q * r / lot) * lot

        def px(p: int, up: bool) -> int:
            if not p:
                return 0
            x = p / r / tick
            return max(math.ceil(x) if up else math.floor(x), 1) * tick

        def mark(p: int) -> int:
            return max(math.floor(p / r), 1) if p else 0

        ev: list[Event] = [("SPLIT_APPLIED", a, sid, n, d, ts)]
        members = [o for o in self.live.values() if o.asset == a]
        members += [o for o in self.pending.values() if o.asset == a]
        for o in sorted(members, key=lambda o: o.seq):
            if o.rem and not qty(o.rem) and (o.oid in self.live or o.oid in self.pending):
                ev += self.cancel(o.oid, a, ts, "SPLIT")
        members = [o for o in members if o.oid in self.live or o.oid in self.pending]
        resting = [o for o in members if o.oid in self.live and not o.waiting and not o.parked]
        resting.sort(key=lambda o: (-o.price if o.side == "BUY" else o.price, o.arrival))
        for o in resting:
            self.arrival += 1
            o.arrival = self.arrival
        before = {o.oid: o.filled for o in members}
        for o in members:
            o.rem, o.filled = qty(o.rem), qty(o.filled)
            o.qty = o.filled + o.rem
            o.price = px(o.price, o.side == "SELL")
            o.stop = px(o.stop, o.side == "BUY")
            o.trail = max(math.floor(o.trail / r / tick), 1) * tick if o.trail else 0
            o.water = mark(o.water)
            g = o.group
            if g is not None and g.parent is o:
                g.pfilled = qty(g.pfilled)
            if g is not None and g.legs and g.legs[0] is o:
                g.lfilled = [qty(f) for f in g.lfilled or []]
        for key in ("last", "ref", "mark"):
            cfg[key] = mark(cfg[key])
        if count > 0:
            self.splits.setdefault(a, []).append((count, r))
            self.split_filled.setdefault(a, {})[count] = before
        else:
            self.split_filled.pop(a, None)
        for o in sorted(members, key=lambda o: o.seq):
            ev.append(
                (
                    "SPLIT_ADJUSTED",
                    a,
                    o.oid,
                    o.uid,
                    sid,
                    o.qty,
                    o.rem,
                    o.filled,
                    o.price,
                    o.stop,
                    o.trail,
                    ts,
                )
            )
        return ev

    def expire_day(self, a: str, ts: int) -> list[Event]:
        if a not in self.assets:
            return [("REJECTED", a, None, None, "UNKNOWN_ASSET", ts)]
        ev: list[Event] = []
        for o in sorted(self.live.values(), key=lambda o: o.dayseq):
            if o.asset == a and o.tif == "DAY":
                ev.append(("EXPIRED", a, o.oid, o.uid, o.rem, o.filled, ts))
                del self.live[o.oid]
                o.rem = 0
                if o.group is not None:
                    self._queue(o.group)
        if self.links:
            self._run_links(ev, ts)
        return ev

    def reference_price(self, a: str, price: int, ts: int) -> list[Event]:
        if a not in self.assets:
            return [("REJECTED", a, None, None, "UNKNOWN_ASSET", ts)]
        if price <= 0:
            return [("REJECTED", a, None, None, "INVALID_PRICE", ts)]
        cfg = self.assets[a]
        cfg["ref"] = cfg["mark"] = price
        ev: list[Event] = []
        self._stops(a, ev, ts)
        if self.links:
            self._run_links(ev, ts)
        return ev

    # internals ----------------------------------------------------------

    def _makers(self, o: MOrder) -> list[MOrder]:
        opp = "SELL" if o.side == "BUY" else "BUY"
        rows = [
            m
            for m in self.live.values()
            if m.asset == o.asset and m.side == opp and not m.waiting and not m.parked
        ]
        if o.side == "BUY":
            rows.sort(key=lambda m: (m.price, m.arrival))
        else:
            rows.sort(key=lambda m: (-m.price, m.arrival))
        return rows

    def _crosses(self, side: str, p: int, limit: int) -> bool:
        return p <= limit if side == "BUY" else p >= limit

    def _collar(self, o: MOrder) -> int:
        cfg = self.assets[o.asset]
        makers = self._makers(o)
        ref = cfg["mark"] or (makers[0].price if makers else 0)  # the freshest of ref/last
        if not ref:
            return 0
        tick = cfg["tick"]
        if o.side == "BUY":
            lim = ref * (BPS + cfg["collar"]) // BPS
            lim -= lim % tick
        else:
            lim = -(-ref * (BPS - cfg["collar"]) // BPS)
            lim += -lim % tick
        return int(max(lim, tick))

    def _end(self, o: MOrder, reason: str, ev: list[Event], ts: int) -> None:
        ev.append(("CANCELLED", o.asset, o.oid, o.uid, reason, o.rem, o.filled, ts))
        o.rem = 0

    def _fok_ok(self, o: MOrder, limit: int) -> bool:
        need = o.rem
        for m in self._makers(o):
            if not self._crosses(o.side, m.price, limit):
                return False
            if m.uid == o.uid:
                if o.stp == "CANCEL_OLDEST":
                    continue
                return False
            need -= m.rem
            if need <= 0:
                return True
        return False

    def _take(self, o: MOrder, ev: list[Event], ts: int) -> None:
        if o.type == "LIMIT":
            limit = o.price
        else:
            limit = self._collar(o)
            if not limit:
                self._end(o, "FOK_UNFILLABLE" if o.tif == "FOK" else "NO_LIQUIDITY", ev, ts)
                return
        if o.notional:
            self._take_notional(o, limit, ev, ts)
            return
        makers = self._makers(o)
        crosses = bool(makers) and self._crosses(o.side, makers[0].price, limit)
        if o.tif == "FOK" and (not crosses or not self._fok_ok(o, limit)):
            self._end(o, "FOK_UNFILLABLE", ev, ts)
            return
        self_trade = False
        for m in makers:
            if not o.rem or not self._crosses(o.side, m.price, limit):
                break
            if m.uid == o.uid:
                if o.stp == "CANCEL_NEWEST":
                    self_trade = True
                    break
                ev.append(("CANCELLED", o.asset, m.oid, m.uid, "SELF_TRADE", m.rem, m.filled, ts))
                m.rem = 0
                del self.live[m.oid]
                if m.group is not None:
                    self._queue(m.group)
                if o.stp == "CANCEL_BOTH":
                    self_trade = True
                    break
                continue
            t = min(o.rem, m.rem)
            self._fill(o, m, t, ev, ts)
            o.rem -= t
            ev[-1] = (*ev[-1][:12], o.rem, ev[-1][13], o.rem == 0, ts)
        if not o.rem:
            return
        if self_trade:
            self._end(o, "SELF_TRADE", ev, ts)
        elif o.type == "MARKET":
            left = [m for m in self._makers(o)]
            self._end(o, "NO_LIQUIDITY" if not left else "COLLAR", ev, ts)
        elif o.tif in ("IOC", "FOK"):
            self._end(o, "IOC_REMAINDER", ev, ts)
        else:
            self.arrival += 1
            o.arrival = self.arrival
            self._go_live(o)

    def _fill(self, o: MOrder, m: MOrder, t: int, ev: list[Event], ts: int) -> None:
        cfg = self.assets[o.asset]
        m.rem -= t
        m.filled += t
        o.filled += t
        cfg["trades"] += 1
        cfg["last"] = cfg["mark"] = m.price
        ev.append(
            (
                "FILL",
                o.asset,
                o.oid,
                f"{o.asset}:{cfg['trades']}",
                m.oid,
                o.oid,
                m.uid,
                o.uid,
                o.side,
                m.price,
                t,
                m.rem,
                0,
                m.rem == 0,
                False,
                ts,
            )
        )
        if m.group is not None:
            self._queue(m.group)
        if not m.rem:
            del self.live[m.oid]

    def _take_notional(self, o: MOrder, limit: int, ev: list[Event], ts: int) -> None:
        cfg = self.assets[o.asset]
        cash = o.notional * 10 ** cfg["qs"]
        lot = cfg["lot"]
        self_trade = False
        done = False
        for m in self._makers(o):
            if not self._crosses(o.side, m.price, limit):
                break
            if cash // m.price // lot == 0:
                done = True
                break
            if m.uid == o.uid:
                if o.stp == "CANCEL_NEWEST":
                    self_trade = True
                    break
                ev.append(("CANCELLED", o.asset, m.oid, m.uid, "SELF_TRADE", m.rem, m.filled, ts))
                m.rem = 0
                del self.live[m.oid]
                if m.group is not None:
                    self._queue(m.group)
                if o.stp == "CANCEL_BOTH":
                    self_trade = True
                    break
                continue
            t = min(m.rem, cash // m.price // lot * lot)
            cash -= t * m.price
            self._fill(o, m, t, ev, ts)
            done = cash // m.price < lot
            ev[-1] = (*ev[-1][:14], done, ts)
            if done:
                break
        if done and o.filled:
            o.rem = 0
            return
        if self_trade:
            reason = "SELF_TRADE"
        elif done:
            reason = "NOTIONAL_TOO_SMALL"
        elif not self._makers(o):
            reason = "NO_LIQUIDITY"
        else:
            reason = "COLLAR"
        self._end(o, reason, ev, ts)

    def _trail(self, a: str, ev: list[Event], ts: int) -> None:
        """Sells whose high-water mark the mark passes, by (water, arrival); then buys whose
        low-water mark it passes (none yet first), by (descending water, arrival)."""
        cfg = self.assets[a]
        mark = cfg["mark"]
        if not mark:
            return
        trailing = [
            o
            for o in self.live.values()
            if o.asset == a and o.waiting and o.type == "TRAILING_STOP" and not o.parked
        ]
        sells = sorted(
            (o for o in trailing if o.side == "SELL" and o.water < mark),
            key=lambda o: (o.water, o.seq),
        )
        buys = sorted(
            (o for o in trailing if o.side == "BUY" and (not o.water or o.water > mark)),
            key=lambda o: (-(o.water or NO_WATER), o.seq),
        )
        for o in sells + buys:
            o.water = mark
            s = trail_stop(o.side, o.trail, o.bps, mark, cfg["tick"])
            if o.side == "SELL":
                if s <= o.stop:
                    continue
            else:
                if s >= o.stop:
                    continue
                if o.price:
                    cap = s * (BPS + cfg["collar"]) // BPS
                    cap -= cap % cfg["tick"]
                    o.price = min(o.price, cap)
            o.stop = s
            ev.append(("STOP_MOVED", a, o.oid, o.uid, s, o.price, mark, ts))

    def _stops(self, a: str, ev: list[Event], ts: int) -> None:
        cfg = self.assets[a]
        while True:
            self._trail(a, ev, ts)
            mark = cfg["mark"]
            waiting = [o for o in self.live.values() if o.asset == a and o.waiting and not o.parked]
            buys = sorted(
                (o for o in waiting if o.side == "BUY" and o.stop <= mark),
                key=lambda o: (o.stop, o.seq),
            )
            sells = sorted(
                (o for o in waiting if o.side == "SELL" and o.stop >= mark),
                key=lambda o: (-o.stop, o.seq),
            )
            cands = [x[0] for x in (buys, sells) if x]
            if not cands:
                return
            o = min(cands, key=lambda o: o.seq)
            del self.live[o.oid]
            o.waiting = False
            ev.append(("TRIGGERED", a, o.oid, o.uid, o.stop, mark, ts))
            if o.type == "TRAILING_STOP":
                o.type = "LIMIT" if o.price else "MARKET"
            else:
                o.type = "MARKET" if o.type == "STOP_LOSS" else "LIMIT"
            g = o.group
            if g is not None:
                p = g.parent
                if p is not None and p.rem:
                    self._kill(p, "OCO", ev, ts)
            self._take(o, ev, ts)
            if g is not None:
                self._queue(g)

    def crossed(self, a: str) -> bool:
        resting = [o for o in self.live.values() if o.asset == a and not o.waiting and not o.parked]
        bids = [o.price for o in resting if o.side == "BUY"]
        asks = [o.price for o in resting if o.side == "SELL"]
        return bool(bids and asks and max(bids) >= min(asks))


def caught_up(m: Model, c: dict[str, Any], buy: bool) -> dict[str, Any]:
    """A stamped command as the engine takes it: its terms after every split of its asset
    with a higher count, as if it had rested through them (quantities x r down to the lot;
    a limit / r in the customer's favour, a stop / r away from the market, a trail / r down;
    a linked order's legs on their own side)."""
    stamp = c.get("split_seq")
    late = [
        (count, r)
        for count, r in m.splits.get(c["asset_id"], [])
        if stamp is not None and count > stamp
    ]
    missed = [r for _, r in late]
    if not missed or c.get("restored"):
        return c
    cfg = m.assets[c["asset_id"]]
    lot, tick = cfg["lot"], cfg["tick"]

    def adjust(key: str, spec: dict[str, Any], fn: Any) -> None:
        v = spec.get(key)
        if type(v) is int and v > 0:
            for r in missed:
                v = fn(v, r)
            spec[key] = v

    def px(up: bool) -> Any:
        return lambda p, r: (
            max(math.ceil(p / r / tick) if up else math.floor(p / r / tick), 1) * tick
        )

    out = dict(c)
    q = c.get("quantity")
    if c["cmd"] == "REPLACE" and type(q) is int and q > 0:
        # At each split missed, the filled part (as it stood before that split) and the rest
        # rounded apart; the total once when the order's filled quantity then is not known.
        records = m.split_filled.get(c["asset_id"], {})
        for count, r in late:
            filled = records.get(count, {}).get(c.get("order_id", ""), -1)
            if 0 <= filled <= q:
                done = math.floor(filled * r / lot) * lot
                q = done + math.floor((q - filled) * r / lot) * lot
            else:
                q = math.floor(q * r / lot) * lot
        out["quantity"] = q
    else:
        adjust("quantity", out, lambda q, r: math.floor(q * r / lot) * lot)
    adjust("price", out, px(not buy))
    adjust("stop_price", out, px(buy))
    adjust("trail_amount", out, lambda t, r: max(math.floor(t / r / tick), 1) * tick)
    kind = c.get("order_class")
    if (
        c["cmd"] == "NEW_ORDER"
        and kind in ("BRACKET", "OTO", "OCO")
        and type(c.get("legs")) is list
    ):
        leg_buy = buy if kind == "OCO" else not buy
        legs = []
        for spec in c["legs"]:
            if isinstance(spec, dict):
                spec = dict(spec)
                adjust("price", spec, px(not leg_buy))
                adjust("stop_price", spec, px(leg_buy))
            legs.append(spec)
        out["legs"] = legs
    return out


def model_apply(m: Model, c: dict[str, Any]) -> list[Event]:
    k = c["cmd"]
    if k == "NEW_ORDER":
        c = caught_up(m, c, c["side"] == "BUY")
    elif k == "REPLACE":
        o = m.live.get(c["order_id"])
        if o is not None and o.asset == c["asset_id"]:
            c = caught_up(m, c, o.side == "BUY")
    if k == "NEW_ORDER":
        return m.new_order(
            c["order_id"],
            c["user_id"],
            c["asset_id"],
            c["side"],
            c["order_type"],
            c["tif"],
            c["quantity"] or 0,
            c["price"] or 0,
            c["stop_price"] or 0,
            c["ts"],
            c["notional"] or 0,
            c.get("stp"),
            c.get("trail_amount") or 0,
            c.get("trail_bps") or 0,
            c.get("extended_hours") or False,
            c.get("order_class"),
            c.get("legs"),
        )
    if k == "SESSION":
        return m.session(c["asset_id"], c["session"], c["ts"])
    if k == "REPLACE":
        return m.replace(
            c["order_id"],
            c["asset_id"],
            c["replace_id"],
            c["quantity"] or 0,
            c["price"] or 0,
            c["stop_price"] or 0,
            c["tif"],
            c["ts"],
            c["trail_amount"] or 0,
            c["trail_bps"] or 0,
        )
    if k == "CANCEL":
        return m.cancel(c["order_id"], c["asset_id"], c["ts"])
    if k == "EXPIRE_DAY":
        return m.expire_day(c["asset_id"], c["ts"])
    if k == "REFERENCE_PRICE":
        return m.reference_price(c["asset_id"], c["price"], c["ts"])
    if k == "SPLIT":
        return m.split(
            c["asset_id"],
            c["split_id"],
            c["numerator"],
            c["denominator"],
            c["ts"],
            c.get("split_seq") or 0,
        )
    return m.add_asset(
        c["asset_id"],
        c["price_scale"],
        c["tick_size"],
        c["qty_scale"],
        c["lot_size"],
        c["collar_bps"],
        c["stp"],
        c["ts"],
    )


# ---------------------------------------------------------------------- strategies

ASSETS = ["AAA", "BBB"]
USERS = ["u1", "u2", "u3", "u4"]


@st.composite
def scripts(draw: st.DrawFn, max_len: int = 80) -> list[dict[str, Any]]:
    stp = draw(st.sampled_from(["CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH"]))
    lot = draw(st.sampled_from([1, 1, 5]))
    tick = draw(st.sampled_from([1, 1, 5]))
    collar = draw(st.sampled_from([50, 500, 5000]))
    cmds: list[dict[str, Any]] = []
    ts = 1000
    for a in ASSETS:
        cmds.append(
            {
                "cmd": "ADD_ASSET",
                "asset_id": a,
                "price_scale": 2,
                "tick_size": tick,
                "qty_scale": 3,
                "lot_size": lot,
                "collar_bps": collar,
                "stp": stp,
                "ts": ts,
            }
        )
    order_ids: list[str] = []
    splits = dict.fromkeys(ASSETS, 0)  # each asset's split count (PostgreSQL's split_seq)

    def stamp(a: str) -> dict[str, int]:
        """Sometimes the split count the command was planned at (often an older one)."""
        if not splits[a] or draw(st.integers(0, 2)) == 0:
            return {}
        return {"split_seq": draw(st.integers(0, splits[a]))}

    n = draw(st.integers(1, max_len))
    for i in range(n):
        ts += 1
        a = draw(st.sampled_from(ASSETS))
        kind = draw(st.integers(0, 99))
        price = 1000 + tick * draw(st.integers(-6, 6))
        if kind < 56:
            otype = draw(
                st.sampled_from(
                    ["LIMIT"] * 6 + ["MARKET"] * 2 + ["STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP"]
                )
            )
            side = draw(st.sampled_from(["BUY", "SELL"]))
            tif = draw(st.sampled_from(["GTC", "GTC", "DAY", "IOC", "FOK"]))
            qty: int | None = lot * draw(st.integers(1, 12))
            notional: int | None = None
            if otype == "MARKET" and side == "BUY" and tif != "FOK" and draw(st.booleans()):
                qty, notional = None, draw(st.integers(1, 40_000))
            oid = f"o{i}"
            if order_ids and draw(st.integers(0, 30)) == 0:
                oid = draw(st.sampled_from(order_ids))  # duplicate: must be ignored
            order_ids.append(oid)
            stop = None
            if otype in ("STOP_LOSS", "STOP_LIMIT"):
                stop = 1000 + tick * draw(st.integers(-6, 6))
            priced = otype in ("LIMIT", "STOP_LIMIT")
            order: dict[str, Any] = {
                "cmd": "NEW_ORDER",
                "order_id": oid,
                "user_id": draw(st.sampled_from(USERS)),
                "asset_id": a,
                "side": side,
                "order_type": otype,
                "tif": tif,
                "quantity": qty,
                "notional": notional,
                "price": price if priced else None,
                "stop_price": stop,
                "ts": ts,
            }
            if otype == "TRAILING_STOP":
                order.update(trail_fields(draw, tick))
                if draw(st.booleans()):
                    order["stop_price"] = 1000 + tick * draw(st.integers(-6, 6))
                if side == "BUY" and draw(st.booleans()):
                    order["price"] = 1100 + tick * draw(st.integers(0, 6))
            if otype == "LIMIT" and draw(st.integers(0, 4)) == 0:
                order["extended_hours"] = True
            if otype == "LIMIT" and draw(st.integers(0, 2)) == 0:
                order.update(linked_fields(draw, order, i, tick))
                order_ids.extend(
                    str(leg["order_id"]) for leg in order["legs"] or [] if isinstance(leg, dict)
                )
            order.update(stamp(a))
            cmds.append(order)
        elif kind < 62:
            if order_ids:
                cmds.append(
                    {
                        "cmd": "REPLACE",
                        "order_id": draw(st.sampled_from(order_ids)),
                        "asset_id": a,
                        "replace_id": f"r{i}",
                        "quantity": lot * draw(st.integers(0, 14)),
                        "price": draw(st.sampled_from([None, price, price + tick, 1100])),
                        "stop_price": draw(st.sampled_from([None, price, 1000])),
                        "tif": draw(st.sampled_from(["GTC", "GTC", "DAY", "IOC"])),
                        "ts": ts,
                        **trail_fields(draw, tick),
                        **stamp(a),
                    }
                )
        elif kind < 64:
            # an invalid order (bad tick, lot, missing price, unknown asset...)
            bad = draw(st.sampled_from(["tick", "lot", "noprice", "asset", "side", "stop"]))
            c = {
                "cmd": "NEW_ORDER",
                "order_id": f"o{i}",
                "user_id": "u1",
                "asset_id": a,
                "side": "BUY",
                "order_type": "LIMIT",
                "tif": "GTC",
                "quantity": lot,
                "notional": None,
                "price": price,
                "stop_price": None,
                "ts": ts,
            }
            if bad == "tick":
                c["price"] = price + 1 if tick > 1 else 0
            elif bad == "lot":
                c["quantity"] = lot + 1 if lot > 1 else -1
            elif bad == "noprice":
                c["price"] = None
            elif bad == "asset":
                c["asset_id"] = "ZZZ"
            elif bad == "side":
                c["side"] = "HOLD"
            else:
                c["stop_price"] = price
            order_ids.append(f"o{i}")
            cmds.append(c)
        elif kind < 86:
            if order_ids:
                oid = draw(st.sampled_from(order_ids))
                cmds.append({"cmd": "CANCEL", "order_id": oid, "asset_id": a, "ts": ts})
        elif kind < 93:
            cmds.append(
                {
                    "cmd": "REFERENCE_PRICE",
                    "asset_id": a,
                    "price": 1000 + draw(st.integers(-8, 8)),
                    "ts": ts,
                }
            )
        elif kind < 94:
            cmds.append({"cmd": "EXPIRE_DAY", "asset_id": a, "ts": ts})
        elif kind < 97:
            n, d = draw(st.sampled_from([(2, 1), (3, 2), (1, 2), (1, 10), (5, 4), (1, 1)]))
            sid = draw(st.sampled_from([f"s{i}", "s-repeat"]))  # a repeat is ignored
            splits[a] += 1
            cmds.append(
                {
                    "cmd": "SPLIT",
                    "asset_id": a,
                    "split_id": sid,
                    "numerator": n,
                    "denominator": d,
                    "ts": ts,
                    "split_seq": splits[a],
                }
            )
        else:
            which = draw(st.sampled_from(["EXTENDED", "REGULAR"]))
            cmds.append({"cmd": "SESSION", "asset_id": a, "session": which, "ts": ts})
    return cmds


def linked_fields(draw: st.DrawFn, order: dict[str, Any], i: int, tick: int) -> dict[str, Any]:
    """A bracket, OTO or OCO around a LIMIT order: legs mostly valid, sometimes not."""
    kind = draw(st.sampled_from(["BRACKET", "BRACKET", "OTO", "OCO", "SIMPLE", "BOGUS"]))
    price = order["price"]
    buy = order["side"] == "BUY"
    sign = 1 if buy else -1
    away = tick * draw(st.integers(1, 6))
    tp = {
        "order_id": f"o{i}tp",
        "order_type": "LIMIT",
        "tif": draw(st.sampled_from(["GTC", "GTC", "DAY"])),
        "price": price + sign * away,
        "stop_price": None,
    }
    stop_type = draw(st.sampled_from(["STOP_LOSS", "STOP_LIMIT"]))
    stop = price - sign * tick * draw(st.integers(1, 6))
    sl = {
        "order_id": f"o{i}sl",
        "order_type": stop_type,
        "tif": draw(st.sampled_from(["GTC", "GTC", "DAY"])),
        "price": max(tick, stop - sign * tick * 2) if stop_type == "STOP_LIMIT" else None,
        "stop_price": max(tick, stop),
    }
    if kind == "BRACKET":
        legs: list[Any] = [tp, sl]
    elif kind == "OTO":
        legs = [draw(st.sampled_from([tp, sl]))]
    elif kind == "OCO":
        # the order itself is the take-profit: its stop is on its own side, beyond the limit
        sl["stop_price"] = max(tick, price - sign * -1 * tick * draw(st.integers(1, 6)))
        sl["stop_price"] = max(tick, price + sign * tick * draw(st.integers(1, 6)))
        if stop_type == "STOP_LIMIT":
            sl["price"] = max(tick, sl["stop_price"] + sign * tick)
        legs = [sl]
    else:
        legs = [tp, sl] if kind == "BOGUS" else []
    if draw(st.integers(0, 9)) == 0 and legs:  # something wrong with a leg
        bad = dict(legs[0])
        bad[draw(st.sampled_from(["order_type", "tif", "price", "order_id"]))] = draw(
            st.sampled_from([None, "MARKET", "IOC", 1, order["order_id"]])
        )
        legs[0] = bad
    return {"order_class": kind, "legs": legs if kind != "SIMPLE" else None}


def trail_fields(draw: st.DrawFn, tick: int) -> dict[str, Any]:
    """A trail: an amount, a percentage, sometimes neither or both (invalid)."""
    kind = draw(st.sampled_from(["amount", "amount", "bps", "bps", "none", "both"]))
    amount = tick * draw(st.integers(1, 6))
    bps = draw(st.sampled_from([10, 50, 200]))
    return {
        "trail_amount": amount if kind in ("amount", "both") else None,
        "trail_bps": bps if kind in ("bps", "both") else None,
    }


# ---------------------------------------------------------------------- invariants


def check_book_structure(engine: Engine) -> None:
    """Internal consistency of every book (levels, keys, indices)."""
    indexed = 0
    for a, book in engine.books.items():
        for side, sign in ((book.bids, 1), (book.asks, -1)):
            assert side.keys == sorted(side.keys)
            assert set(side.keys) == set(side.levels)
            for k, lvl in side.levels.items():
                live = list(lvl.orders.values())
                assert len(live) > 0
                assert all(o.remaining > 0 for o in live)
                assert list(lvl.orders) == [o.order_id for o in live]
                assert lvl.volume == sum(o.remaining for o in live)
                for o in live:
                    assert o.price * sign == k
                    assert engine.orders[o.order_id] is o
                    assert o.asset_id == a
                indexed += len(live)
        stops = [e[2] for e in book.buy_stops if e[2].remaining and e[0] == e[2].stop_price]
        stops += [e[2] for e in book.sell_stops if e[2].remaining and -e[0] == e[2].stop_price]
        assert len(stops) == book.stop_count
        assert len({id(o) for o in stops}) == len(stops)  # one live entry per stop
        trailing = [o for o in stops if o.order_type == "TRAILING_STOP"]
        assert len(trailing) == book.trail_count
        tracked = []
        entries = 0
        for buckets, keys, sells in (
            (book.trail_sells, book.trail_sell_keys, True),
            (book.trail_buys, book.trail_buy_keys, False),
        ):
            assert sorted(keys) == sorted(buckets)  # one heap key per bucket
            assert not keys or keys[0] == min(keys)
            for k, bucket in buckets.items():
                assert bucket
                assert [o.seq for o in bucket] == sorted(o.seq for o in bucket)  # by acceptance
                entries += len(bucket)
                live = [o for o in bucket if o.remaining and o.order_type == "TRAILING_STOP"]
                for o in live:  # filed at its water mark, on its side
                    assert k == (o.water if sells else -(o.water or NO_WATER))
                    assert (o.side == "SELL") is sells
                tracked += live
        assert entries == book.trail_entries
        assert sorted(map(id, tracked)) == sorted(map(id, trailing))  # one entry each
        indexed += len(stops)
        for oid, o in book.day.items():
            assert o.tif == "DAY"
            assert engine.orders[oid] is o
        for oid, o in book.parked.items():
            assert engine.orders[oid] is o
            assert o.remaining > 0
        indexed += len(book.parked)
        for oid, o in book.pending.items():
            assert oid not in engine.orders
            assert o.group is not None
        assert not book.links
        assert not book.linking
        bb, ba = book.bids.best_price(), book.asks.best_price()
        assert not (bb and ba and bb >= ba), f"crossed book {a}: {bb} >= {ba}"
    assert indexed == len(engine.orders)


def run_both(cmds: list[dict[str, Any]]) -> tuple[Engine, Model, list[list[Event]]]:
    engine, model = Engine(), Model()
    out = []
    for c in cmds:
        got = engine.apply(c)
        want = model_apply(model, c)
        assert got == want, f"command {c}\n engine {got}\n model  {want}"
        check_book_structure(engine)
        for a in ASSETS:
            assert not model.crossed(a)
        out.append(got)
    return engine, model, out


PROFILE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROFILE
@given(scripts())
def test_engine_matches_reference_model(cmds: list[dict[str, Any]]) -> None:
    run_both(cmds)


@PROFILE
@given(scripts())
def test_quantity_is_conserved_and_fok_is_all_or_nothing(cmds: list[dict[str, Any]]) -> None:
    engine, _, outs = run_both(cmds)
    ordered: dict[str, int] = {}
    tif: dict[str, str] = {}
    filled: dict[str, int] = defaultdict(int)
    ended: dict[str, int] = defaultdict(int)
    for evs in outs:
        for ev in evs:
            if ev[0] == "ACCEPTED" and not ev[8]:  # quantity orders (not notional)
                ordered[ev[2]] = ev[7]
                tif[ev[2]] = ev[6]
            elif ev[0] == "FILL":
                filled[ev[4]] += ev[10]
                filled[ev[5]] += ev[10]
                assert ev[10] > 0
            elif ev[0] == "CANCELLED":
                ended[ev[2]] += ev[5]
            elif ev[0] == "EXPIRED":
                ended[ev[2]] += ev[4]
            elif ev[0] == "REPLACED":  # a new total quantity (and time in force)
                ordered[ev[2]] = ev[5]
                tif[ev[2]] = ev[9]
                ended[ev[2]] = 0
            elif ev[0] == "RESIZED":  # a linked order's new total
                ordered[ev[2]] = ev[4]
            elif ev[0] == "SPLIT_ADJUSTED":  # a stock split: everything in the new shares
                ordered[ev[2]], filled[ev[2]], ended[ev[2]] = ev[5], ev[7], 0
    for oid, qty in ordered.items():
        live = engine.orders.get(oid)
        remaining = live.remaining if live else 0
        assert filled[oid] + remaining + ended[oid] == qty, oid
        if tif[oid] == "FOK":
            assert filled[oid] in (0, qty), f"FOK {oid} partially filled"
            assert live is None or live.order_type in STOPS  # waiting


@PROFILE
@given(scripts(), st.integers(0, 1000))
def test_replay_from_snapshot_is_byte_identical(cmds: list[dict[str, Any]], cut: int) -> None:
    cut %= len(cmds) + 1
    straight = Engine()
    expected = [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds)
        for j, ev in enumerate(straight.apply(c))
    ]
    first = Engine()
    got = [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds[:cut])
        for j, ev in enumerate(first.apply(c))
    ]
    state = json.loads(json.dumps(dump_engine(first)))  # through JSON, as the shard stores it
    second = load_engine(state)
    assert dump_engine(second) == state
    got += [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds[cut:], start=cut)
        for j, ev in enumerate(second.apply(c))
    ]
    assert got == expected
    assert dump_engine(second) == dump_engine(straight)


@settings(max_examples=300, deadline=None)
@given(scripts(max_len=30))
def test_fast_event_encoding_is_canonical_json(cmds: list[dict[str, Any]]) -> None:
    engine = Engine()
    for i, c in enumerate(cmds):
        for j, ev in enumerate(engine.apply(c)):
            fast = encode_event(ev, f"{i}-7", j)
            assert fast == dumps(event_to_wire(ev, f"{i}-7", j))
            assert json.loads(fast)["event"] == ev[0]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=6)
        ),
        max_leaves=12,
    )
)
def test_garbage_commands_are_rejected_never_raise(cmd: Any) -> None:
    engine = Engine()
    engine.add_asset("AAA", 2, 1, 3)
    if isinstance(cmd, dict) and cmd:
        cmd = {**cmd, "cmd": "NEW_ORDER"} if len(cmd) % 2 else cmd
    events = engine.apply(cmd)
    assert all(isinstance(ev, tuple) for ev in events)
    check_book_structure(engine)


def test_a_long_loadgen_flow_matches_reference_model() -> None:
    """The bench's own flow with the new types (trailing stops accumulating, so the mark moves
    whole water-mark buckets, merges them into one at the new mark, and pushes many moved
    stops at once), 8,000 commands: the engine's events equal the model's, command
    by command. The flow must have moved trailing stops often enough to prove anything."""
    from matching.loadgen import OrderFlow

    flow = OrderFlow(seed=7, assets=2, users=40, new_types=True)
    cmds = flow.setup(depth=30) + flow.commands(8_000)
    _, _, outs = run_both(cmds)
    moved = [e for out in outs for e in out if e[0] == "STOP_MOVED"]
    triggered = [e for out in outs for e in out if e[0] == "TRIGGERED"]
    assert len(moved) > 800, len(moved)
    assert len({e[2] for e in moved}) > 20  # many stops, not one moving often
    assert triggered
