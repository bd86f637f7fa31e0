"""Writes the replay sample (``data/sample_ticks.csv``) from the synthetic feed.

    python -m bourse.app.demo.ticks [--rows 3000] [--seed 20260105] [--output PATH]

Five demo assets (AAPL, MSFT, TSLA, SPY, BTC-USD) from the opening bell of 5 January 2026,
about one tick per second each, so the default 3,000 rows cover ten minutes. Deterministic:
the same arguments write the same file.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bourse.app.demo.assets import DEMO_ASSETS
from models.assets import AssetClass, default_calendar
from workers.marketdata.providers import Instrument
from workers.marketdata.replay import SAMPLE_PATH
from workers.marketdata.synthetic import SyntheticProvider

SAMPLE_SYMBOLS = ("AAPL", "MSFT", "TSLA", "SPY", "BTC-USD")
SAMPLE_START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # 09:30 in New York


def sample_instruments(symbols: Sequence[str] = SAMPLE_SYMBOLS) -> list[Instrument]:
    by_symbol = {a.symbol: a for a in DEMO_ASSETS}
    return [
        Instrument(
            symbol=s,
            price=Decimal(by_symbol[s].price),
            tick_size=Decimal(by_symbol[s].tick),
            market_calendar=default_calendar(AssetClass(by_symbol[s].asset_class)),
            volatility=by_symbol[s].volatility,
        )
        for s in symbols
    ]


def write_sample(path: Path, rows: int, seed: int) -> None:
    provider = SyntheticProvider(seed=seed, ticks_per_second=1.0, always_tick=True)
    ticks = itertools.islice(provider.generate(sample_instruments(), SAMPLE_START), rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["timestamp", "symbol", "price", "size"])
        for t in ticks:
            stamp = t.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            out.writerow([stamp, t.symbol, str(t.price), "" if t.size is None else str(t.size)])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bourse.app.demo.ticks", description=__doc__)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20260105)
    ap.add_argument("--output", type=Path, default=SAMPLE_PATH)
    args = ap.parse_args(argv)
    write_sample(args.output, args.rows, args.seed)
    print(f"wrote {args.rows} ticks to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
