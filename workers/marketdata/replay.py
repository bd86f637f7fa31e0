"""Replay: ticks or bars from a CSV file, paced like the original (or faster), looping.

Two layouts, told apart by the header (columns in any order, extra columns ignored):

- ticks: ``timestamp,symbol,price[,size]``;
- bars: ``timestamp,symbol,open,high,low,close[,volume]``: each bar becomes four ticks spread
  over the bar's interval (the gap to the symbol's next bar, else ``bar_seconds``): open, then
  low and high (high first on a down bar), then close, each carrying a quarter of the volume.

``timestamp`` is ISO-8601 (a naive one is UTC) or Unix epoch seconds (fractions allowed). Rows
must be in time order; rows of symbols the platform does not list are skipped. Prices are taken
as written (Decimal, never float), rounded to the asset's tick.

Pacing: ``speed`` 1.0 replays in real time, 2.0 twice as fast, 0 as fast as possible. With
``rebase`` (the default, what the live feed wants) timestamps are moved (and scaled by the
speed) so the first row happens now, and each pass continues where the previous one ended;
without it the file's own timestamps are kept (tests, backfills). With ``loop`` the file
starts over at its end.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from bourse.clock import utcnow
from workers.marketdata.providers import Instrument, Tick

if TYPE_CHECKING:
    from bourse.settings import Settings

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample_ticks.csv"
TICK_COLUMNS = {"timestamp", "symbol", "price"}
BAR_COLUMNS = {"timestamp", "symbol", "open", "high", "low", "close"}


class ReplayFormatError(ValueError):
    pass


def parse_timestamp(raw: str) -> datetime:
    text = raw.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayFormatError(f"not a timestamp: {raw!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _decimal(raw: str | None, what: str) -> Decimal:
    try:
        value = Decimal((raw or "").strip())
    except InvalidOperation:
        raise ReplayFormatError(f"{what} is not a number: {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ReplayFormatError(f"{what} must be a non-negative number: {raw!r}")
    return value


@dataclass(frozen=True)
class _Bar:
    symbol: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None


def read_ticks(path: Path, *, bar_seconds: float = 60.0) -> Iterator[Tick]:
    """Every tick of the file, in file order, with the file's timestamps (prices as written)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = {c.strip().lower() for c in reader.fieldnames or ()}
        if columns >= TICK_COLUMNS:
            yield from _tick_rows(reader)
        elif columns >= BAR_COLUMNS:
            yield from _bars_to_ticks(_bar_rows(reader), bar_seconds)
        else:
            raise ReplayFormatError(
                f"{path}: need columns {sorted(TICK_COLUMNS)} (ticks) or {sorted(BAR_COLUMNS)}"
                " (bars)"
            )


def _row(raw: dict[str | None, str | None]) -> dict[str, str]:
    return {k.strip().lower(): (v or "") for k, v in raw.items() if isinstance(k, str)}


def _tick_rows(reader: csv.DictReader[str]) -> Iterator[Tick]:
    for raw in reader:
        row = _row(raw)
        size = row.get("size", "").strip()
        yield Tick(
            symbol=row["symbol"].strip().upper(),
            timestamp=parse_timestamp(row["timestamp"]),
            price=_decimal(row["price"], "price"),
            size=_decimal(size, "size") if size else None,
        )


def _bar_rows(reader: csv.DictReader[str]) -> Iterator[_Bar]:
    for raw in reader:
        row = _row(raw)
        volume = row.get("volume", "").strip()
        yield _Bar(
            symbol=row["symbol"].strip().upper(),
            start=parse_timestamp(row["timestamp"]),
            open=_decimal(row["open"], "open"),
            high=_decimal(row["high"], "high"),
            low=_decimal(row["low"], "low"),
            close=_decimal(row["close"], "close"),
            volume=_decimal(volume, "volume") if volume else None,
        )


def _bars_to_ticks(bars: Iterator[_Bar], bar_seconds: float) -> Iterator[Tick]:
    # A bar's interval is the gap to its symbol's next bar: hold one bar per symbol back.
    held: dict[str, _Bar] = {}
    pending: list[Tick] = []
    for bar in bars:
        prev = held.get(bar.symbol)
        if prev is not None:
            pending.extend(_bar_ticks(prev, (bar.start - prev.start).total_seconds()))
        held[bar.symbol] = bar
        # Emit what cannot be preceded by anything still to come, in time order.
        pending.sort(key=lambda t: t.timestamp)
        horizon = min(b.start for b in held.values())
        while pending and pending[0].timestamp < horizon:
            yield pending.pop(0)
    for bar in held.values():
        pending.extend(_bar_ticks(bar, bar_seconds))
    pending.sort(key=lambda t: t.timestamp)
    yield from pending


def _bar_ticks(bar: _Bar, seconds: float) -> list[Tick]:
    step = timedelta(seconds=max(seconds, 0.004) / 4)
    middle = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    size = None if bar.volume is None else bar.volume / 4
    return [
        Tick(bar.symbol, bar.start + step * i, price, size)
        for i, price in enumerate((bar.open, *middle, bar.close))
    ]


class ReplayProvider:
    def __init__(
        self,
        path: Path = SAMPLE_PATH,
        *,
        speed: float = 1.0,
        loop: bool = True,
        rebase: bool = True,
        bar_seconds: float = 60.0,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if not path.is_file():
            raise FileNotFoundError(f"replay file not found: {path}")
        self.path = path
        self.speed = speed
        self.loop = loop
        self.rebase = rebase
        self.bar_seconds = bar_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplayProvider:
        return cls(
            settings.marketdata_replay_path or SAMPLE_PATH,
            speed=settings.marketdata_replay_speed,
            loop=settings.marketdata_replay_loop,
        )

    async def ticks(self, instruments: Sequence[Instrument]) -> AsyncIterator[Tick]:
        grid = {i.symbol: i.tick_size for i in instruments}
        loop = asyncio.get_running_loop()
        resume = utcnow()  # where the next pass starts (rebase)
        scale = self.speed if self.speed > 0 else 1.0
        while True:
            origin: datetime | None = None
            origin_clock = loop.time()
            last = resume
            emitted = False
            for tick in read_ticks(self.path, bar_seconds=self.bar_seconds):
                origin = origin or tick.timestamp
                tick_size = grid.get(tick.symbol)
                if tick_size is None:
                    continue
                offset = (tick.timestamp - origin).total_seconds() / scale
                if self.speed > 0:
                    delay = offset - (loop.time() - origin_clock)
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)  # unpaced: still let the loop breathe
                price = max(tick_size, tick.price.quantize(tick_size, rounding=ROUND_HALF_EVEN))
                last = resume + timedelta(seconds=offset) if self.rebase else tick.timestamp
                emitted = True
                yield Tick(tick.symbol, last, price, tick.size)
            if not self.loop or not emitted:
                return
            resume = last + timedelta(seconds=1)
