"""Synthetic order flow for benchmarks and tests (not used by the engine itself).

``OrderFlow`` produces wire commands (dicts, see ``matching.wire``) from a seed, so the same
seed always gives the same flow. It keeps a scratch engine alongside to aim cancels at orders
that are still live and to price passive orders just behind the touch. The default mix is the
benchmark's: about 60% passive limit adds, 25% cancels, 15% marketable orders (limit orders
through the touch and market orders); ``extras=True`` adds a sprinkle of stop orders,
reference prices, FOK / IOC / DAY orders, DAY expiries and linked orders (brackets, OCO) for
coverage; ``new_types=True``
(also on with ``extras``) adds replaces of live orders (half keeping priority: quantity down,
half losing it: a new price), trailing stops (by amount or percentage) and linked orders
(brackets and OCO pairs), about 6% of the flow, in place of passive adds.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from .core.engine import Engine

Command = dict[str, Any]


class OrderFlow:
    def __init__(
        self,
        seed: int = 1,
        assets: int = 4,
        users: int = 500,
        *,
        extras: bool = False,
        new_types: bool = False,
        price_scale: int = 2,
        qty_scale: int = 4,
        start_ts: int = 1_700_000_000_000_000_000,
    ) -> None:
        self.rng = random.Random(seed)
        self.asset_ids = [f"SYM{i}" for i in range(assets)]
        self.users = [self._uuid() for _ in range(users)]
        self.extras = extras
        self.new_types = new_types or extras
        self.price_scale = price_scale
        self.qty_scale = qty_scale
        self.tick = 1
        self.ts = start_ts
        self.mid = {
            a: 100 * 10**price_scale + self.rng.randint(-5000, 5000) for a in self.asset_ids
        }
        self.scratch = Engine()
        self.passive: dict[str, list[str]] = {a: [] for a in self.asset_ids}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _emit(self, cmd: Command) -> Command:
        self.scratch.apply(cmd)
        return cmd

    def _next_ts(self) -> int:
        self.ts += self.rng.randint(1_000, 50_000)
        return self.ts

    def setup(self, depth: int = 200) -> list[Command]:
        """ADD_ASSET for every asset, a reference price, and ``depth`` resting orders each."""
        out: list[Command] = []
        for a in self.asset_ids:
            out.append(
                self._emit(
                    {
                        "cmd": "ADD_ASSET",
                        "asset_id": a,
                        "price_scale": self.price_scale,
                        "tick_size": self.tick,
                        "qty_scale": self.qty_scale,
                        "lot_size": 1,
                        "collar_bps": 500,
                        "stp": "CANCEL_NEWEST",
                        "ts": self._next_ts(),
                    }
                )
            )
            out.append(
                self._emit(
                    {
                        "cmd": "REFERENCE_PRICE",
                        "asset_id": a,
                        "price": self.mid[a],
                        "ts": self._next_ts(),
                    }
                )
            )
        for _ in range(depth):
            for a in self.asset_ids:
                out.append(self._emit(self._passive(a)))
        return out

    def commands(self, n: int) -> list[Command]:
        """``n`` commands of the mix."""
        return [self.next() for _ in range(n)]

    def next(self) -> Command:
        rng = self.rng
        a = rng.choice(self.asset_ids)
        self._drift(a)
        r = rng.random()
        if self.extras and r < 0.08:
            cmd = self._extra(a)
        elif self.new_types and 0.08 <= r < 0.14:  # in place of some passive adds
            cmd = self._new_type(a) or self._passive(a)
        elif r < 0.60:
            cmd = self._passive(a)
        elif r < 0.85:
            cmd = self._cancel(a) or self._passive(a)
        else:
            cmd = self._marketable(a)
        return self._emit(cmd)

    # ------------------------------------------------------------------ pieces

    def _drift(self, a: str) -> None:
        if self.rng.random() < 0.02:
            self.mid[a] = max(1000, self.mid[a] + self.rng.randint(-3, 3))

    def _touch(self, a: str) -> tuple[int, int]:
        book = self.scratch.books[a]
        bid = book.bids.best_price()
        ask = book.asks.best_price()
        mid = self.mid[a]
        return (bid or mid - 1), (ask or mid + 1)

    def _qty(self, big: bool = False) -> int:
        scale: int = 10**self.qty_scale
        if self.rng.random() < 0.3:
            q = self.rng.randint(1, 100) * scale  # whole shares
        else:
            q = self.rng.randint(1, 100 * scale)  # fractional
        return q * self.rng.randint(2, 4) if big else q

    def _order(
        self,
        a: str,
        side: str,
        order_type: str,
        tif: str,
        quantity: int,
        price: int | None = None,
        stop_price: int | None = None,
        notional: int | None = None,
    ) -> Command:
        return {
            "cmd": "NEW_ORDER",
            "order_id": self._uuid(),
            "user_id": self.rng.choice(self.users),
            "asset_id": a,
            "side": side,
            "order_type": order_type,
            "tif": tif,
            "quantity": quantity or None,
            "notional": notional,
            "price": price,
            "stop_price": stop_price,
            "ts": self._next_ts(),
        }

    def _passive(self, a: str) -> Command:
        rng = self.rng
        bid, ask = self._touch(a)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        offset = min(int(rng.expovariate(1 / 6)), 60)
        if side == "BUY":
            price = max(self.tick, min(self.mid[a], ask - 1) - offset)
        else:
            price = max(self.mid[a], bid + 1) + offset
        tif = "DAY" if rng.random() < 0.2 else "GTC"
        cmd = self._order(a, side, "LIMIT", tif, self._qty(), price=price)
        self.passive[a].append(cmd["order_id"])
        return cmd

    def _cancel(self, a: str) -> Command | None:
        ids = self.passive[a]
        live = self.scratch.orders
        for _ in range(4):
            if not ids:
                return None
            i = self.rng.randrange(len(ids))
            oid = ids[i]
            ids[i] = ids[-1]
            ids.pop()
            if oid in live:
                return {"cmd": "CANCEL", "order_id": oid, "asset_id": a, "ts": self._next_ts()}
        return None

    def _marketable(self, a: str) -> Command:
        rng = self.rng
        bid, ask = self._touch(a)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        if rng.random() < 0.35:
            return self._order(a, side, "MARKET", "IOC", self._qty(big=True))
        through = rng.randint(0, 3)
        price = ask + through if side == "BUY" else max(self.tick, bid - through)
        tif = "IOC" if rng.random() < 0.3 else "GTC"
        return self._order(a, side, "LIMIT", tif, self._qty(big=True), price=price)

    def _new_type(self, a: str) -> Command | None:
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return self._bracket(a)  # a bracket (its exits wait for its fills) or an OCO pair
        if r < 0.50:
            side = "BUY" if rng.random() < 0.5 else "SELL"
            cmd = self._order(a, side, "TRAILING_STOP", "GTC", self._qty())
            if rng.random() < 0.5:
                cmd["trail_amount"] = rng.randint(5, 50) * self.tick
            else:
                cmd["trail_bps"] = rng.randint(20, 200)
            if not self.scratch.books[a].mark:
                cmd["stop_price"] = self.mid[a]
            return cmd
        ids = self.passive[a]
        live = self.scratch.orders
        for _ in range(4):
            if not ids:
                return None
            o = live.get(ids[rng.randrange(len(ids))])
            if o is None or o.order_type != "LIMIT":
                continue
            quantity, price = o.quantity, o.price
            if rng.random() < 0.5 and o.remaining > 1:
                quantity = o.filled + o.remaining // 2  # down: keeps its place
            else:
                price = max(self.tick, price + rng.choice((-1, 1)) * self.tick)
            return {
                "cmd": "REPLACE",
                "order_id": o.order_id,
                "asset_id": a,
                "replace_id": self._uuid(),
                "quantity": quantity,
                "price": price,
                "stop_price": None,
                "tif": o.tif,
                "trail_amount": None,
                "trail_bps": None,
                "ts": self._next_ts(),
            }
        return None

    def _extra(self, a: str) -> Command:
        rng = self.rng
        bid, ask = self._touch(a)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        r = rng.random()
        if r < 0.25:
            stop = ask + rng.randint(1, 20) if side == "BUY" else max(1, bid - rng.randint(1, 20))
            if rng.random() < 0.5:
                return self._order(a, side, "STOP_LOSS", "GTC", self._qty(), stop_price=stop)
            limit = stop + 5 if side == "BUY" else max(1, stop - 5)
            tif = rng.choice(["GTC", "DAY", "IOC"])
            return self._order(
                a, side, "STOP_LIMIT", tif, self._qty(), price=limit, stop_price=stop
            )
        if r < 0.45:
            self.mid[a] = max(1000, self.mid[a] + rng.randint(-30, 30))
            return {
                "cmd": "REFERENCE_PRICE",
                "asset_id": a,
                "price": self.mid[a],
                "ts": self._next_ts(),
            }
        if r < 0.65:
            price = ask + rng.randint(0, 5) if side == "BUY" else max(1, bid - rng.randint(0, 5))
            return self._order(a, side, "LIMIT", "FOK", self._qty(big=True), price=price)
        if r < 0.80:
            cash = rng.randint(1, 5000) * 10**self.price_scale
            return self._order(a, "BUY", "MARKET", "IOC", 0, notional=cash)
        if r < 0.83:
            return {"cmd": "EXPIRE_DAY", "asset_id": a, "ts": self._next_ts()}
        if r < 0.90:
            return self._bracket(a)
        return self._order(a, side, "MARKET", "FOK", self._qty(big=True))

    def _bracket(self, a: str) -> Command:
        """A bracket buy near the touch (its take-profit above, its stop below), or an OCO
        sell (a take-profit above the touch, a stop below it)."""
        rng = self.rng
        bid, ask = self._touch(a)
        if rng.random() < 0.7:
            price = ask + rng.randint(-2, 1)
            cmd = self._order(a, "BUY", "LIMIT", "GTC", self._qty(), price=price)
            cmd["order_class"] = "BRACKET"
            cmd["legs"] = [
                {"order_id": self._uuid(), "order_type": "LIMIT", "tif": "GTC",
                 "price": price + rng.randint(5, 40), "stop_price": None},
                {"order_id": self._uuid(), "order_type": "STOP_LOSS", "tif": "GTC",
                 "price": None, "stop_price": max(self.tick, price - rng.randint(5, 40))},
            ]  # fmt: skip
            return cmd
        price = ask + rng.randint(5, 40)
        cmd = self._order(a, "SELL", "LIMIT", "GTC", self._qty(), price=price)
        cmd["order_class"] = "OCO"
        cmd["legs"] = [
            {"order_id": self._uuid(), "order_type": "STOP_LOSS", "tif": "GTC", "price": None,
             "stop_price": max(self.tick, bid - rng.randint(5, 40))},
        ]  # fmt: skip
        return cmd
