"""Where a real market-data vendor plugs in.

A vendor adapter is a ``PriceProvider`` (``workers.marketdata.providers``): one method,
``ticks(instruments)``, an async iterator of ``Tick`` for the symbols asked for, running until
cancelled. Everything else (quotes in Redis, pub/sub, reference prices to the matching shards,
persistence, candles) is the feed's job, so an adapter only translates the vendor's messages.

Select it with a setting naming a factory that takes the ``Settings`` and returns the provider::

    BOURSE_MARKETDATA_PROVIDER=mycompany.feeds:make_provider   # or mycompany.feeds.make_provider

What an adapter must get right (the skeleton below shows where each goes):

- **Reconnect.** A websocket drops; reconnect with capped exponential backoff and jitter, then
  re-authenticate and re-subscribe to every symbol. Never end the iterator on a network error:
  the feed treats the end of ``ticks`` as "this provider has nothing more" (a finite replay).
- **Symbols.** The platform's symbol is the asset id (``BRK.B``, ``BTC-USD``); map to and from
  the vendor's (``BRK/B``, ``X:BTCUSD``) here.
- **Numbers.** Parse prices from the message text into ``Decimal`` (``json.loads(...,
  parse_float=Decimal)``), never through float.
- **Time.** ``Tick.timestamp`` is the vendor's event time as an aware UTC datetime.
- **Back-pressure.** Do not buffer without bound: if the feed falls behind, keep only the latest
  tick per symbol (the feed conflates quotes anyway).
- **Resubscription on universe change.** When an asset is listed the feed closes the iterator
  and calls ``ticks`` again with the new list: close the socket in a ``finally``.

``WebSocketVendorProvider`` below is that skeleton for a vendor speaking JSON over a websocket
(``websockets`` ships with ``uvicorn[standard]``). It is not wired to a real vendor: subclass it
and fill in ``subscribe_message`` and ``parse`` for one.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import structlog

from workers.marketdata.providers import Instrument, Tick

log = structlog.get_logger("workers.marketdata.vendor")


class WebSocketVendorProvider:
    """A reconnecting JSON-over-websocket adapter; subclass per vendor."""

    max_backoff_seconds = 30.0

    def __init__(self, url: str, *, api_key: str | None = None) -> None:
        self.url = url
        self.api_key = api_key

    def subscribe_message(self, symbols: Sequence[str]) -> dict[str, Any]:
        """The vendor's subscription request (and authentication, if in-band)."""
        raise NotImplementedError

    def parse(self, message: Any) -> list[Tick]:
        """The ticks in one decoded vendor message (often a list of trades or quotes)."""
        raise NotImplementedError

    async def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        symbols = [i.symbol for i in instruments]
        attempt = 0
        while True:
            try:
                async with connect(self.url) as ws:
                    await ws.send(json.dumps(self.subscribe_message(symbols)))
                    attempt = 0
                    async for raw in ws:
                        for tick in self.parse(json.loads(raw, parse_float=Decimal)):
                            yield tick
            except (OSError, WebSocketException) as exc:
                attempt += 1
                delay = min(self.max_backoff_seconds, 0.5 * 2**attempt) * random.uniform(0.5, 1)
                log.warning("vendor feed disconnected", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
