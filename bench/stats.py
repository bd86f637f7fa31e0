"""Latency statistics and the cProfile summary shared by the benchmarks."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
from collections.abc import Awaitable, Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def profiled(count: int, op: Callable[[], Awaitable[object]], top: int = 30) -> str:
    """The `top` functions by own time over `count` more calls of `op` (cProfile, this
    process): what the benches' ``--profile`` prints."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        for _ in range(count):
            await op()
    finally:
        prof.disable()
    if dump := os.environ.get("BENCH_PROFILE_DUMP"):  # for pstats' callers/callees by hand
        prof.dump_stats(dump)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()
