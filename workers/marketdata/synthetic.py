"""The synthetic feed: geometric Brownian motion per asset, seeded, at a few ticks per second.

Each asset walks on its own: ``S' = S * exp(-sigma**2 / 2 * dt + sigma * sqrt(dt) * Z)`` (a
martingale: no drift), ``sigma`` its annualised volatility (the asset's ``volatility``
reference data, else ``DEFAULT_VOLATILITY``) and ``dt`` the time since its previous tick in
years of *its market's* time: a US equity's year is 252 sessions of 6.5 hours (so a day of
ticks moves it like a trading day), a 24x7 asset's year is 365 days. Ticks arrive per asset
every ``1 / ticks_per_second`` seconds on average, jittered uniformly between half and one and
a half times that.

Deterministic: each asset has its own ``random.Random`` seeded with ``f"{seed}:{symbol}"``, so
for one seed and start time ``generate`` always yields the same ticks, and adding an asset does
not change the others' paths. The walk's state is a float (it is a simulation, not money); the
prices it emits are Decimals on the asset's tick grid (never below one tick). Sizes are
plausible: a lognormal notional (median 5,000 of the currency) in whole shares for equities and
in 0.0001 units for 24x7 assets.

Market hours: with ``always_tick`` (the default, so the demo moves at night and at weekends)
every asset ticks all the time. Without it, an asset whose calendar is closed does not tick
until its next open (no diffusion accrues while closed; real overnight gaps are not modelled).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

import structlog

from bourse.clock import utcnow
from models.calendars import ALWAYS_OPEN, calendar
from workers.marketdata.providers import Instrument, Tick

if TYPE_CHECKING:
    from bourse.settings import Settings

log = structlog.get_logger("workers.marketdata.synthetic")

SECONDS_PER_TRADING_YEAR = 252 * 6.5 * 3600
SECONDS_PER_CALENDAR_YEAR = 365 * 24 * 3600
MAX_STEP_SECONDS = 60.0  # a longer pause (market closed, a stall) diffuses like one minute
MEDIAN_NOTIONAL = 5_000.0


def seconds_per_year(market_calendar: str) -> float:
    return SECONDS_PER_CALENDAR_YEAR if market_calendar == ALWAYS_OPEN else SECONDS_PER_TRADING_YEAR


@dataclass
class _Walk:
    instrument: Instrument
    rng: random.Random
    state: float
    last: datetime
    year_seconds: float


class SyntheticProvider:
    def __init__(
        self,
        *,
        seed: int | None = None,
        ticks_per_second: float = 2.0,
        always_tick: bool = True,
    ) -> None:
        if ticks_per_second <= 0:
            raise ValueError("ticks_per_second must be positive")
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.ticks_per_second = ticks_per_second
        self.always_tick = always_tick

    @classmethod
    def from_settings(cls, settings: Settings) -> SyntheticProvider:
        provider = cls(
            seed=settings.marketdata_seed,
            ticks_per_second=settings.marketdata_ticks_per_second,
            always_tick=settings.marketdata_always_tick,
        )
        log.info(
            "synthetic feed",
            seed=provider.seed,
            ticks_per_second=provider.ticks_per_second,
            always_tick=provider.always_tick,
        )
        return provider

    def _gap(self, rng: random.Random) -> float:
        return rng.uniform(0.5, 1.5) / self.ticks_per_second

    def _next_time(self, walk: _Walk, after: datetime) -> datetime:
        t = after + timedelta(seconds=self._gap(walk.rng))
        if not self.always_tick:
            cal = calendar(walk.instrument.market_calendar)
            if not cal.is_open(t):
                t = cal.next_open(t) + timedelta(seconds=self._gap(walk.rng))
        return t

    def generate(self, instruments: Sequence[Instrument], start: datetime) -> Iterator[Tick]:
        """Every tick from ``start`` on, in time order (infinite; pure and deterministic)."""
        walks: list[_Walk] = []
        heap: list[tuple[datetime, int]] = []
        for i, inst in enumerate(instruments):
            if inst.price <= 0:
                raise ValueError(f"{inst.symbol}: the start price must be positive")
            walk = _Walk(
                instrument=inst,
                rng=random.Random(f"{self.seed}:{inst.symbol}"),
                state=float(inst.price),
                last=start,
                year_seconds=seconds_per_year(inst.market_calendar),
            )
            walks.append(walk)
            heapq.heappush(heap, (self._next_time(walk, start), i))
        while heap:
            t, i = heapq.heappop(heap)
            walk = walks[i]
            yield self._step(walk, t)
            heapq.heappush(heap, (self._next_time(walk, t), i))

    def _step(self, walk: _Walk, t: datetime) -> Tick:
        inst, rng = walk.instrument, walk.rng
        seconds = min((t - walk.last).total_seconds(), MAX_STEP_SECONDS)
        walk.last = t
        dt = seconds / walk.year_seconds
        sigma = inst.volatility
        walk.state *= math.exp(-0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * rng.gauss())
        price = Decimal(walk.state).quantize(inst.tick_size, rounding=ROUND_HALF_EVEN)
        price = max(price, inst.tick_size)
        notional = Decimal(rng.lognormvariate(math.log(MEDIAN_NOTIONAL), 1.0))
        step = Decimal("0.0001") if inst.market_calendar == ALWAYS_OPEN else Decimal(1)
        size = max(step, (notional / price).quantize(step, rounding=ROUND_DOWN))
        return Tick(symbol=inst.symbol, timestamp=t, price=price, size=size)

    async def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        """``generate`` paced by the wall clock, starting now."""
        loop = asyncio.get_running_loop()
        start = utcnow()
        origin = loop.time()
        for tick in self.generate(instruments, start):
            delay = (tick.timestamp - start).total_seconds() - (loop.time() - origin)
            if delay > 0:
                await asyncio.sleep(delay)
            yield tick
