"""The liquidity provider process: keeps a two-sided ladder in each configured asset's book.

    python -m workers.liquidity     (DATABASE_URL / REDIS_URL from the environment)

Every ``BOURSE_LP_INTERVAL_SECONDS`` it looks at each configured asset and re-quotes (cancels its
previous orders and sends a fresh ladder, in one pipelined batch on the asset's shard stream, so
the shard sees cancel-then-new in order) when:

- it has no quotes there yet, or the market just opened;
- the reference price moved ``BOURSE_LP_REQUOTE_BPS`` or more since the last ladder;
- the book's top no longer shows its best level whole (someone traded against it).

While an asset's market is closed it withdraws its quotes; in the pre-market and after-hours
sessions of US equities it quotes ``BOURSE_LP_EXTENDED_SPREAD_FACTOR`` times wider
(``models.liquidity.session_quoting``), and re-quotes when the session changes. Its live order
ids are kept in Redis (``<P>lp:orders:<symbol>``), so a restarted provider first cancels what
the previous one left. Nothing in Redis is assumed: quotes that vanished with it (the book
shows no ladder) are sent again, and the order-number counter never goes backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bourse.clock import now_ns, utcnow
from bourse.keys import lp_orders_key as orders_key
from bourse.keys import lp_seq_key
from bourse.process import service_main
from bourse.settings import Settings
from matching.codec import to_fixed
from matching.wire import cancel, new_order
from models.assets import Asset
from models.calendars import Session, calendar
from models.exchange import scales
from models.liquidity import Quoting, ladder, session_quoting
from models.orders import LIQUIDITY_PROVIDER
from models.quotes import price_of, read_quotes
from models.services import Services, open_services

log = structlog.get_logger("bourse.liquidity")
MAX_QUOTE_AGE_SECONDS = 30.0  # refresh the ladder at least this often


@dataclass
class _Quoted:
    reference: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    size: Decimal
    order_ids: list[str] = field(default_factory=list)
    at: float = 0.0
    session: Session = Session.REGULAR


def _eaten(
    top: tuple[Decimal, Decimal] | None,
    ours: Decimal | None,
    size: Decimal,
    better: Callable[[Decimal, Decimal], bool],
) -> bool:
    """Whether our best level on one side was traded against: the side's top is gone, worse
    than ours, or at our price with less than our size (a better user order is fine)."""
    if ours is None:
        return False
    if top is None:
        return True
    price, quantity = top
    if better(price, ours):
        return False
    return price != ours or quantity < size


class LiquidityProvider:
    def __init__(self, services: Services, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.clock = clock
        self.prefix = services.settings.redis_prefix
        self.requote_bps = Decimal(services.settings.lp_requote_bps)
        self.state: dict[str, _Quoted] = {}
        self._restored: set[str] = set()
        self._last_seq = 0  # the highest order number this process used

    def _session(self, asset: Asset) -> Session:
        if self.services.settings.market_hours == "always":
            return Session.REGULAR
        return calendar(asset.market_calendar).session(self.clock())

    async def _previous_ids(self, symbol: str) -> list[str]:
        if symbol in self.state:
            return self.state[symbol].order_ids
        if symbol in self._restored:
            return []
        self._restored.add(symbol)
        raw = await self.services.redis.get(orders_key(self.prefix, symbol))
        return list(json.loads(raw)) if raw else []

    def _needs_requote(
        self, asset: Asset, reference: Decimal, book: dict[str, Any] | None, session: Session
    ) -> bool:
        st = self.state.get(asset.symbol)
        if st is None or not st.order_ids or st.session is not session:
            return True
        if abs(reference - st.reference) * 10_000 >= self.requote_bps * st.reference:
            return True
        if time.monotonic() - st.at > MAX_QUOTE_AGE_SECONDS:
            return True
        if book is None:
            return True
        bids, asks = book.get("bids") or [], book.get("asks") or []
        top_bid = (Decimal(bids[0][0]), Decimal(bids[0][1])) if bids else None
        top_ask = (Decimal(asks[0][0]), Decimal(asks[0][1])) if asks else None
        if st.best_bid is not None and (
            top_bid is None
            or top_bid[0] < st.best_bid
            or (top_bid[0] == st.best_bid and top_bid[1] < st.size)
        ):
            return True
        return st.best_ask is not None and (
            top_ask is None
            or top_ask[0] > st.best_ask
            or (top_ask[0] == st.best_ask and top_ask[1] < st.size)
        )

    async def step(self) -> int:
        """One pass over the configured assets; returns how many were re-quoted."""
        configured = await self.services.liquidity.enabled()
        symbols = [a.symbol for a, _ in configured]
        quotes = await read_quotes(self.services.redis, self.prefix, symbols)
        # One round trip for every quoted asset's book (to see whether its ladder was hit).
        books = await self.services.exchange.books([s for s in symbols if s in self.state])
        commands: list[dict[str, Any]] = []
        requoted = 0
        factor = self.services.settings.lp_extended_spread_factor
        for asset, configured_quoting in configured:
            old = await self._previous_ids(asset.symbol)
            session = self._session(asset)
            quoting = session_quoting(configured_quoting, session, factor)
            if quoting is None:
                if old:
                    commands += [dict(cancel(i, asset.symbol, ts=now_ns())) for i in old]
                    self.state.pop(asset.symbol, None)
                    await self.services.redis.delete(orders_key(self.prefix, asset.symbol))
                continue
            reference = price_of(asset, quotes).price
            book = books.get(asset.symbol)
            if asset.symbol in self.state and not self._needs_requote(
                asset, reference, book, session
            ):
                continue
            commands += [dict(cancel(i, asset.symbol, ts=now_ns())) for i in old]
            _, sent = await self._ladder(asset, reference, quoting, session)
            commands += sent
            requoted += 1
        if commands:
            await self.services.exchange.send(commands)
        return requoted

    async def _ladder(
        self, asset: Asset, reference: Decimal, quoting: Quoting, session: Session
    ) -> tuple[list[str], list[dict[str, Any]]]:
        levels = ladder(asset, reference, quoting)
        first = int(await self.services.redis.incrby(lp_seq_key(self.prefix), len(levels)))
        if first - len(levels) < self._last_seq:
            # The counter was lost with Redis (restarted empty, or its last writes lost): never
            # reuse an id the engine may have seen (it would ignore the order silently).
            first = self._last_seq + len(levels)
            await self.services.redis.set(lp_seq_key(self.prefix), first)
        self._last_seq = first
        sc = scales(asset)
        ids: list[str] = []
        commands: list[dict[str, Any]] = []
        for n, level in enumerate(levels):
            order_id = f"lp-{first - len(levels) + n + 1}"
            ids.append(order_id)
            commands.append(
                dict(
                    new_order(
                        order_id,
                        LIQUIDITY_PROVIDER,
                        asset.symbol,
                        level.side,
                        "LIMIT",
                        "GTC",
                        ts=now_ns(),
                        quantity=to_fixed(level.quantity, sc.qty_scale),
                        price=to_fixed(level.price, sc.price_scale),
                        # Outside the regular session the engine trades only orders so
                        # flagged (the others wait for the open: SESSION).
                        extended_hours=session in (Session.PRE, Session.POST),
                        # A quote in flight at a split catches up with it in the engine.
                        split_seq=asset.split_seq,
                    )
                )
            )
        bids = [lv.price for lv in levels if lv.side == "BUY"]
        asks = [lv.price for lv in levels if lv.side == "SELL"]
        self.state[asset.symbol] = _Quoted(
            reference=reference,
            best_bid=max(bids) if bids else None,
            best_ask=min(asks) if asks else None,
            size=levels[0].quantity if levels else Decimal(0),
            order_ids=ids,
            at=time.monotonic(),
            session=session,
        )
        await self.services.redis.set(orders_key(self.prefix, asset.symbol), json.dumps(ids))
        return ids, commands

    async def withdraw(self) -> None:
        """Cancel every live quote (at shutdown)."""
        commands = [
            dict(cancel(i, symbol, ts=now_ns()))
            for symbol, st in self.state.items()
            for i in st.order_ids
        ]
        if commands:
            await self.services.exchange.send(commands)
        for symbol in self.state:
            await self.services.redis.delete(orders_key(self.prefix, symbol))
        self.state.clear()

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.services.settings.lp_interval_seconds
        while not stop.is_set():
            try:
                await self.step()
            except Exception as exc:
                log.warning("liquidity step failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        with contextlib.suppress(Exception):
            await self.withdraw()


async def run(settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event) -> None:
    async with open_services(settings, database_url, redis_url, pool_size=2) as services:
        log.info("liquidity provider started")
        await LiquidityProvider(services).run(stop)
    log.info("liquidity provider stopped")


def main() -> int:
    return service_main(run)


if __name__ == "__main__":
    sys.exit(main())
