"""``bourse backfill --file PATH [--asset SYMBOL] [--interval 1m]``: history from CSV bars.

Format (the bar layout the replay provider reads too): a header naming at least
``timestamp,symbol,open,high,low,close,volume`` (any order; extra columns ignored), one bar per
row. ``timestamp`` is the bar's start, ISO-8601 (naive = UTC) or Unix epoch seconds. Prices
and volume are plain decimals (never floats); ``low <= open, close <= high``, prices positive,
volume not negative. ``data/sample_bars.csv`` is a small sample (``make_sample_bars.py``).

The whole file is checked before anything is written: a bad row, a bar of an unknown asset or
two bars in one bucket fail the run with line numbers, and nothing is stored. Bars are stored as
candles of ``interval``, replacing what was there (the file is the truth for its range); then
the coarser intervals of the covered range are recomputed from them (1m → 5m → 1h → 1d).
Running the same file twice gives the same candles.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from models.candles import Bar, CandleInterval
from models.services import Services

SAMPLE_BARS_PATH = Path(__file__).resolve().parent / "data" / "sample_bars.csv"
COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
MAX_REPORTED = 20


class BackfillError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:MAX_REPORTED]))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class BackfillReport:
    bars: int
    assets: list[str]
    derived: int
    first: datetime | None
    last: datetime | None


def parse_timestamp(raw: str) -> datetime:
    text = raw.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _positive(raw: str, what: str, allow_zero: bool = False) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"{what} is not a decimal: {raw!r}") from None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{what} must be {'non-negative' if allow_zero else 'positive'}")
    return value


def parse_bar(row: dict[str, str]) -> Bar:
    try:
        ts = parse_timestamp(row["timestamp"])
    except ValueError:
        raise ValueError(
            f"timestamp is not ISO-8601 or epoch seconds: {row['timestamp']!r}"
        ) from None
    symbol = row["symbol"].strip().upper()
    if not symbol:
        raise ValueError("symbol is empty")
    o, h, lo, c = (_positive(row[k], k) for k in ("open", "high", "low", "close"))
    volume = _positive(row["volume"], "volume", allow_zero=True)
    if not (lo <= min(o, c) and max(o, c) <= h):
        raise ValueError("needs low <= open, close <= high")
    return Bar(symbol, ts, o, h, lo, c, volume)


def read_bars(path: Path, symbol: str | None = None) -> Iterator[tuple[int, Bar]]:
    """(line number, bar) for every row (of ``symbol`` only, when given); ValueError with the
    line number on a malformed row."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise BackfillError([f"{path}: header lacks {', '.join(sorted(missing))}"])
        for row in reader:
            line = reader.line_num
            if symbol is not None and (row.get("symbol") or "").strip().upper() != symbol:
                continue
            try:
                yield line, parse_bar(row)
            except (ValueError, KeyError, AttributeError) as exc:
                raise BackfillError([f"line {line}: {exc}"]) from None


async def backfill(
    services: Services,
    path: Path,
    *,
    symbol: str | None = None,
    interval: CandleInterval = CandleInterval.ONE_MINUTE,
) -> BackfillReport:
    symbol = symbol.strip().upper() if symbol else None
    bars = list(read_bars(path, symbol))
    wanted = {b.symbol for _, b in bars} | ({symbol} if symbol else set())
    known = await services.assets.get_many(sorted(wanted))
    problems: list[str] = []
    if symbol is not None and symbol not in known:
        problems.append(f"unknown asset {symbol}")
    seen: dict[tuple[str, datetime], int] = {}
    for line, bar in bars:
        if bar.symbol not in known:
            problems.append(f"line {line}: unknown asset {bar.symbol}")
            continue
        key = (bar.symbol, interval.floor(bar.timestamp))
        if key in seen:
            problems.append(
                f"line {line}: a second {interval.value} bar for {key[0]} at "
                f"{key[1].isoformat()} (first on line {seen[key]})"
            )
        seen[key] = line
    if problems:
        raise BackfillError(problems)
    candles = [b.candle(interval) for _, b in bars]
    await services.candles.replace(candles)
    derived = 0
    spans: dict[str, tuple[datetime, datetime]] = {}
    for c in candles:
        lo, hi = spans.get(c.asset_id, (c.bucket_start, c.bucket_start))
        spans[c.asset_id] = (min(lo, c.bucket_start), max(hi, c.bucket_start))
    for asset_id, (lo, hi) in sorted(spans.items()):
        derived += await services.candles.derive(asset_id, lo, hi, finest=interval)
    times = [c.bucket_start for c in candles]
    return BackfillReport(
        bars=len(candles),
        assets=sorted(spans),
        derived=derived,
        first=min(times) if times else None,
        last=max(times) if times else None,
    )
