"""Writes the backfill sample (``data/sample_bars.csv``): one-minute OHLCV bars, made up.

    python -m bourse.app.demo.bars [--seed 20261030] [--output PATH]

AAPL, MSFT, TSLA and SPY over the regular session of Friday 30 October 2026 (13:30-20:00 UTC)
and BTC-USD from 12:00 UTC on 31 October to 12:00 UTC on 1 November 2026 (across a month
boundary, hence two monthly partitions): 3,000 bars from a seeded geometric Brownian motion
starting at the demo prices, each minute made of six sub-steps (open, extremes, close).
Deterministic: the same arguments write the same file.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from bourse.app.demo.assets import DEMO_ASSETS
from workers.marketdata.backfill import SAMPLE_BARS_PATH

EQUITY_SESSION = (datetime(2026, 10, 30, 13, 30, tzinfo=UTC), 390)
CRYPTO_SPAN = (datetime(2026, 10, 31, 12, 0, tzinfo=UTC), 1440)
SAMPLE = {
    "AAPL": EQUITY_SESSION,
    "MSFT": EQUITY_SESSION,
    "TSLA": EQUITY_SESSION,
    "SPY": EQUITY_SESSION,
    "BTC-USD": CRYPTO_SPAN,
}
MINUTES_PER_YEAR = 365 * 24 * 60
SUBSTEPS = 6


def bars(symbol: str, start: datetime, minutes: int, rng: random.Random) -> Iterator[list[str]]:
    demo = next(a for a in DEMO_ASSETS if a.symbol == symbol)
    tick = Decimal(demo.tick)
    price = float(demo.price)
    sigma = demo.volatility * math.sqrt(1 / (MINUTES_PER_YEAR * SUBSTEPS))
    crypto = symbol.endswith("-USD")

    def q(x: float) -> Decimal:
        return (Decimal(repr(x)) / tick).quantize(Decimal(1), ROUND_HALF_EVEN) * tick

    for m in range(minutes):
        path = [price]
        for _ in range(SUBSTEPS):
            price *= math.exp(sigma * rng.gauss(0.0, 1.0) - sigma * sigma / 2)
            path.append(price)
        o, c = q(path[0]), q(path[-1])
        h, lo = max(q(max(path)), o, c), min(q(min(path)), o, c)
        volume = (
            Decimal(rng.randint(1, 5000)) / Decimal(1000)
            if crypto
            else Decimal(rng.randint(200, 20000))
        )
        ts = start + timedelta(minutes=m)
        yield [ts.strftime("%Y-%m-%dT%H:%M:%SZ"), symbol, str(o), str(h), str(lo), str(c),
               str(volume)]  # fmt: skip


def write(path: Path, seed: int) -> int:
    rng = random.Random(seed)
    rows = [row for symbol, (start, n) in SAMPLE.items() for row in bars(symbol, start, n, rng)]
    rows.sort(key=lambda r: (r[0], r[1]))
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["timestamp", "symbol", "open", "high", "low", "close", "volume"])
        out.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=20261030)
    parser.add_argument("--output", type=Path, default=SAMPLE_BARS_PATH)
    args = parser.parse_args()
    print(f"wrote {write(args.output, args.seed)} bars to {args.output}")


if __name__ == "__main__":
    main()
