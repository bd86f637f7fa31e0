"""Property tests: the engine against a deliberately naive reference model.

The model keeps every resting order in one flat list and sorts candidates by (price, arrival)
on every match; it shares the engine's *rules* (documented in matching/README.md) but none of
its data structures (levels, lazy deletion, heaps, sorted keys, snapshots). Random command
sequences must give identical events, conserve quantity, never leave a crossed book, never
fill a FOK order partially, and replay identically from a snapshot.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
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
        if otype in STOPS:
            o.waiting = True
            self.live[oid] = o
            if cfg["mark"]:
                self._stops(a, ev, ts)
            return ev
        trades = cfg["trades"]
        self._take(o, ev, ts)
        if cfg["trades"] != trades:
            self._stops(a, ev, ts)
        return ev

    def cancel(self, oid: str, a: str, ts: int) -> list[Event]:
        o = self.live.get(oid)
        if o is None or o.asset != a:
            return [("CANCEL_REJECTED", a, oid, "UNKNOWN_ORDER", ts)]
        del self.live[oid]
        ev: list[Event] = [("CANCELLED", a, oid, o.uid, "USER", o.rem, o.filled, ts)]
        o.rem = 0
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
        )
        if t in STOPS:
            n.waiting = True
            self.live[oid] = n
            if cfg["mark"]:
                self._stops(a, ev, ts)
            return ev
        trades = cfg["trades"]
        self._take(n, ev, ts)
        if cfg["trades"] != trades:
            self._stops(a, ev, ts)
        return ev

    def expire_day(self, a: str, ts: int) -> list[Event]:
        if a not in self.assets:
            return [("REJECTED", a, None, None, "UNKNOWN_ASSET", ts)]
        ev: list[Event] = []
        for o in sorted(self.live.values(), key=lambda o: o.seq):
            if o.asset == a and o.tif == "DAY":
                ev.append(("EXPIRED", a, o.oid, o.uid, o.rem, o.filled, ts))
                del self.live[o.oid]
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
        return ev

    # internals ----------------------------------------------------------

    def _makers(self, o: MOrder) -> list[MOrder]:
        opp = "SELL" if o.side == "BUY" else "BUY"
        rows = [
            m for m in self.live.values() if m.asset == o.asset and m.side == opp and not m.waiting
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
            self.live[o.oid] = o

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
            if o.asset == a and o.waiting and o.type == "TRAILING_STOP"
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
            waiting = [o for o in self.live.values() if o.asset == a and o.waiting]
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
            self._take(o, ev, ts)

    def crossed(self, a: str) -> bool:
        resting = [o for o in self.live.values() if o.asset == a and not o.waiting]
        bids = [o.price for o in resting if o.side == "BUY"]
        asks = [o.price for o in resting if o.side == "SELL"]
        return bool(bids and asks and max(bids) >= min(asks))


def model_apply(m: Model, c: dict[str, Any]) -> list[Event]:
    k = c["cmd"]
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
        )
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
        elif kind < 95:
            cmds.append(
                {
                    "cmd": "REFERENCE_PRICE",
                    "asset_id": a,
                    "price": 1000 + draw(st.integers(-8, 8)),
                    "ts": ts,
                }
            )
        else:
            cmds.append({"cmd": "EXPIRE_DAY", "asset_id": a, "ts": ts})
    return cmds


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
        tracked = [e[2] for e in book.trail_sells if e[0] == e[2].water and e[2].remaining]
        tracked += [
            e[2] for e in book.trail_buys if e[0] == -(e[2].water or NO_WATER) and e[2].remaining
        ]
        tracked = [o for o in tracked if o.order_type == "TRAILING_STOP"]
        assert sorted(map(id, tracked)) == sorted(map(id, trailing))  # one entry each
        indexed += len(stops)
        for oid, o in book.day.items():
            assert o.tif == "DAY"
            assert engine.orders[oid] is o
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
