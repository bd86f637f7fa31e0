"""The provider interface: where prices come from, and where every tick and trade goes.

A provider is anything with ``ticks(instruments)``: an async iterator of ``Tick`` for the given
instruments, running until cancelled (or until its data ends: a finite replay). The feed
(``workers.marketdata.feed``) consumes it; providers know nothing of Redis, the shards or the
database. Which provider runs is the setting ``BOURSE_MARKETDATA_PROVIDER``
(``workers.marketdata.selection`` turns settings into a provider and sinks):

- ``synthetic`` (default): ``workers.marketdata.synthetic.SyntheticProvider``;
- ``replay``: ``workers.marketdata.replay.ReplayProvider`` over ``BOURSE_MARKETDATA_REPLAY_PATH``;
- ``alpaca``: ``workers.marketdata.vendor.AlpacaProvider``, Alpaca's market-data websocket;
- ``some.module:factory`` (or ``some.module.factory``): any callable taking the ``Settings`` and
  returning a ``PriceProvider``, e.g. a vendor's websocket adapter (see ``vendor.py``).

When the set of assets changes (an admin lists a new one), the feed closes the iterator and
calls ``ticks`` again with the new list, each instrument starting at its latest known price.

``TickSink`` is the hook for everything derived from the tape (candles): the feed hands every
batch of provider ticks and every batch of venue trades (``FILL`` events of the matching
shards) to each configured sink (``BOURSE_MARKETDATA_SINKS``: factories taking a
``SinkContext``). Delivery is at least once: a trade batch is acknowledged on the shard's event
stream only after every sink took it, so sinks must be idempotent (``Trade.fill_id`` is unique).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bourse.settings import Settings

DEFAULT_VOLATILITY = 0.30  # annualised, for assets the demo universe does not describe


@dataclass(frozen=True, slots=True)
class Tick:
    """One price observation from the provider (not a trade on our venue)."""

    symbol: str
    timestamp: datetime  # aware, UTC
    price: Decimal
    size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade on our venue: a ``FILL`` event of a matching shard, decoded."""

    asset_id: str
    fill_id: str
    timestamp: datetime  # the command's time (``ts`` of the event)
    price: Decimal
    quantity: Decimal
    taker_side: str  # BUY | SELL


@dataclass(frozen=True, slots=True)
class Instrument:
    """What a provider needs to know about an asset."""

    symbol: str
    price: Decimal  # the latest known price: where a simulation starts
    tick_size: Decimal
    market_calendar: str  # models.calendars name
    volatility: float = DEFAULT_VOLATILITY  # annualised


@runtime_checkable
class PriceProvider(Protocol):
    def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        """Ticks of ``instruments`` (in time order per symbol) until cancelled."""
        ...


class TickSink(Protocol):
    """Receives every tick and every venue trade (candles implement it)."""

    async def on_ticks(self, ticks: Sequence[Tick]) -> None: ...

    async def on_trades(self, trades: Sequence[Trade]) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class SinkContext:
    """Handed to sink factories: the feed's settings and connections."""

    settings: Settings
    redis: Redis
    sessionmaker: async_sessionmaker[AsyncSession]


SinkFactory = Callable[[SinkContext], TickSink]
ProviderFactory = Callable[["Settings"], PriceProvider]
