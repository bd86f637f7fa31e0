"""A real market-data vendor: Alpaca's market-data websocket stream (v2), as documented at
docs.alpaca.markets ("WebSocket Stream", "Real-time Stock Data", "Real-time Crypto Data").

Select it with ``BOURSE_MARKETDATA_PROVIDER=alpaca`` and the keys from the Alpaca dashboard
(``BOURSE_ALPACA_KEY_ID``, ``BOURSE_ALPACA_SECRET_KEY``). Stocks stream from
``BOURSE_ALPACA_STOCKS_URL`` (``wss://stream.data.alpaca.markets/v2/iex``; ``…/v2/sip`` with a
paid plan), crypto assets (``BTC-USD`` → ``BTC/USD``) from ``BOURSE_ALPACA_CRYPTO_URL``; one
connection per endpoint (Alpaca allows one per account: a second gets 406).

The protocol, per connection: the server greets with ``[{"T":"success","msg":"connected"}]``;
we send ``{"action":"auth","key":…,"secret":…}`` (within 10 s) and wait for ``authenticated``;
then ``{"action":"subscribe","trades":[…],"quotes":[…]}``, answered by a ``subscription``
message listing everything subscribed. Data arrive as JSON arrays of ``{"T":"t"}`` trades
(``p`` price, ``s`` size, ``t`` RFC 3339 time with nanoseconds) and ``{"T":"q"}`` quotes
(``bp``/``ap`` bid/ask). Errors are ``{"T":"error","code":…,"msg":…}``:

- 402 auth failed, 409 insufficient subscription: the configuration is wrong; retried at the
  longest backoff (never ending the iterator: the feed would take that for "no more data"),
  logged as errors;
- 406 connection limit exceeded: another client holds the account's one connection; longest
  backoff;
- 407 slow client (we fell behind and are about to be cut off), 500 internal error, a closed
  socket, a network error: reconnect with capped exponential backoff and jitter (0.5 s … 30 s),
  re-authenticate and re-subscribe;
- 400 invalid syntax, 401 not authenticated, 403 already authenticated, 404 auth timeout, 405
  symbol limit exceeded, 410 invalid subscribe action: logged; the connection is restarted
  (401/404) or kept (the others: Alpaca keeps the previous subscriptions).

What the adapter guarantees the feed (``workers.marketdata.providers``):

- **Ticks**: a trade is a tick at its price and size; a quote with both sides is a tick at the
  midpoint (no size). Prices are parsed from the JSON text as Decimals (never floats) and put
  on the asset's tick grid (half-even). ``Tick.timestamp`` is the vendor's event time (UTC).
- **Malformed messages** (not JSON, not an array, a data point without a symbol or with a
  price that is not a positive number, a time that does not parse) are counted and skipped.
- **Back-pressure**: the socket is read by its own task into ``LatestTicks``, which keeps only
  the newest tick per symbol until the feed takes it. A slow consumer therefore sees the latest
  prices, memory stays bounded by the number of symbols, and the socket keeps being drained so
  Alpaca does not cut us off as a slow client.
- **Universe change**: the feed closes the iterator and calls ``ticks`` again; the connections
  are closed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import structlog

from workers.marketdata.providers import Instrument, Tick

if TYPE_CHECKING:
    from bourse.settings import Settings

log = structlog.get_logger("workers.marketdata.vendor")

CONFIG_ERRORS: Final = frozenset({402, 409})  # wrong keys or plan: longest backoff
BUSY_ERRORS: Final = frozenset({406})  # the account's one connection is in use elsewhere
RECONNECT_ERRORS: Final = frozenset({401, 404, 407, 500})
_TIME_RE: Final = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class StreamError(Exception):
    """An error message from the vendor that ends this connection."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


@dataclass
class LatestTicks:
    """The newest tick per symbol, waiting for the consumer (oldest symbol first)."""

    waiting: dict[str, Tick] = field(default_factory=dict)
    replaced: int = 0  # ticks superseded before the consumer took them
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, tick: Tick) -> None:
        if self.waiting.pop(tick.symbol, None) is not None:
            self.replaced += 1
        self.waiting[tick.symbol] = tick
        self._ready.set()

    async def get(self) -> Tick:
        while not self.waiting:
            self._ready.clear()
            await self._ready.wait()
        symbol = next(iter(self.waiting))
        return self.waiting.pop(symbol)


def parse_time(raw: Any) -> datetime | None:
    """RFC 3339 with up to nanoseconds (``2024-07-24T07:56:53.639713735Z``) → aware UTC."""
    if not isinstance(raw, str):
        return None
    m = _TIME_RE.match(raw)
    if m is None:
        return None
    whole, fraction, zone = m.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        parsed = datetime.fromisoformat(f"{whole}.{micros}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def _positive(raw: Any) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def vendor_symbol(instrument: Instrument) -> str:
    """Alpaca's name for an asset: crypto pairs with a slash (``BTC-USD`` → ``BTC/USD``)."""
    return instrument.symbol.replace("-", "/") if is_crypto(instrument) else instrument.symbol


def is_crypto(instrument: Instrument) -> bool:
    return instrument.market_calendar == "24x7" and "-" in instrument.symbol


@dataclass
class Stats:
    connects: int = 0
    malformed: int = 0
    errors: dict[int, int] = field(default_factory=dict)


class AlpacaProvider:
    """``PriceProvider`` over Alpaca's market-data websocket (see the module docstring)."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        stocks_url: str,
        crypto_url: str,
        min_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        handshake_timeout_seconds: float = 15.0,
    ) -> None:
        self.key_id, self.secret_key = key_id, secret_key
        self.stocks_url, self.crypto_url = stocks_url, crypto_url
        self.min_backoff = min_backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.handshake_timeout = handshake_timeout_seconds
        self.stats = Stats()
        self.buffer: LatestTicks | None = None  # the current ``ticks`` call's (tests look)

    @classmethod
    def from_settings(cls, settings: Settings) -> AlpacaProvider:
        if not settings.alpaca_key_id or not settings.alpaca_secret_key:
            raise ValueError(
                "BOURSE_MARKETDATA_PROVIDER=alpaca needs BOURSE_ALPACA_KEY_ID and "
                "BOURSE_ALPACA_SECRET_KEY"
            )
        return cls(
            settings.alpaca_key_id,
            settings.alpaca_secret_key,
            stocks_url=settings.alpaca_stocks_url,
            crypto_url=settings.alpaca_crypto_url,
            max_backoff_seconds=settings.alpaca_max_backoff_seconds,
        )

    async def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        buffer = self.buffer = LatestTicks()
        by_url: dict[str, dict[str, Instrument]] = {}
        for instrument in instruments:
            url = self.crypto_url if is_crypto(instrument) else self.stocks_url
            by_url.setdefault(url, {})[vendor_symbol(instrument)] = instrument
        streams = [
            asyncio.create_task(self._stream(url, wanted, buffer), name=f"alpaca {url}")
            for url, wanted in by_url.items()
        ]
        try:
            while True:
                yield await buffer.get()
        finally:
            for task in streams:
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)

    async def _stream(self, url: str, wanted: dict[str, Instrument], buffer: LatestTicks) -> None:
        """One endpoint, forever: connect, authenticate, subscribe, read; back off and retry."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        failures = 0
        while True:
            delay: float | None = None
            try:
                self.stats.connects += 1
                async with connect(url, open_timeout=self.handshake_timeout) as ws:
                    await self._handshake(ws, list(wanted))
                    failures = 0  # a working session resets the backoff
                    async for raw in ws:
                        self._on_message(raw, wanted, buffer)
                    log.warning("vendor stream closed", url=url)
            except StreamError as exc:
                self.stats.errors[exc.code] = self.stats.errors.get(exc.code, 0) + 1
                if exc.code in CONFIG_ERRORS:
                    log.error("vendor refused our credentials or plan", url=url, error=str(exc))
                    delay = self.max_backoff
                elif exc.code in BUSY_ERRORS:
                    log.error("vendor connection limit reached", url=url, error=str(exc))
                    delay = self.max_backoff
                else:
                    log.warning("vendor stream error", url=url, error=str(exc))
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("vendor stream disconnected", url=url, error=repr(exc))
            failures += 1
            if delay is None:
                delay = min(self.max_backoff, self.min_backoff * 2 ** (failures - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _handshake(self, ws: Any, symbols: list[str]) -> None:
        await self._expect(ws, "success", "connected")
        await ws.send(json.dumps({"action": "auth", "key": self.key_id, "secret": self.secret_key}))
        await self._expect(ws, "success", "authenticated")
        await ws.send(json.dumps({"action": "subscribe", "trades": symbols, "quotes": symbols}))
        got = await self._expect(ws, "subscription", None)
        missing = set(symbols) - set(got.get("trades") or []) - set(got.get("quotes") or [])
        if missing:
            log.warning("vendor did not subscribe every symbol", missing=sorted(missing))

    async def _expect(self, ws: Any, kind: str, msg: str | None) -> dict[str, Any]:
        """The next control message, which must be ``kind`` (and ``msg``); an error raises."""
        async with asyncio.timeout(self.handshake_timeout):
            while True:
                for item in self._decode(await ws.recv()):
                    t = item.get("T")
                    if t == "error":
                        raise StreamError(_code(item), str(item.get("msg")))
                    if t == kind and (msg is None or item.get("msg") == msg):
                        return item

    def _decode(self, raw: Any) -> list[dict[str, Any]]:
        try:
            doc = json.loads(raw, parse_float=Decimal)
        except (TypeError, ValueError):
            self.stats.malformed += 1
            return []
        if not isinstance(doc, list):
            self.stats.malformed += 1
            return []
        items = [d for d in doc if isinstance(d, dict)]
        self.stats.malformed += len(doc) - len(items)
        return items

    def _on_message(self, raw: Any, wanted: dict[str, Instrument], buffer: LatestTicks) -> None:
        for item in self._decode(raw):
            t = item.get("T")
            if t in ("t", "q"):
                tick = self._tick(item, wanted)
                if tick is None:
                    self.stats.malformed += 1
                else:
                    buffer.put(tick)
            elif t == "error":
                code = _code(item)
                if code in RECONNECT_ERRORS or code in CONFIG_ERRORS or code in BUSY_ERRORS:
                    raise StreamError(code, str(item.get("msg")))
                self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
                log.warning("vendor error", code=code, msg=item.get("msg"))
            # success / subscription messages after the handshake change nothing here

    def _tick(self, item: dict[str, Any], wanted: dict[str, Instrument]) -> Tick | None:
        symbol = item.get("S")
        instrument = wanted.get(symbol) if isinstance(symbol, str) else None
        at = parse_time(item.get("t"))
        if instrument is None or at is None:
            return None
        size: Decimal | None = None
        if item["T"] == "t":
            price = _positive(item.get("p"))
            size = _positive(item.get("s"))
        else:
            bid, ask = _positive(item.get("bp")), _positive(item.get("ap"))
            price = (bid + ask) / 2 if bid is not None and ask is not None and bid <= ask else None
        if price is None:
            return None
        on_grid = (price / instrument.tick_size).quantize(Decimal(1), ROUND_HALF_EVEN)
        price = on_grid * instrument.tick_size
        if price <= 0:
            return None
        return Tick(symbol=instrument.symbol, timestamp=at, price=price, size=size)


def _code(item: dict[str, Any]) -> int:
    with contextlib.suppress(TypeError, ValueError):
        return int(item.get("code"))  # type: ignore[arg-type]
    return 0
