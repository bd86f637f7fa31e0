"""Matching core benchmark: orders per second per shard, and per-command latency.

    .venv/bin/python bench/matching_core.py [--commands 500000] [--runs 3] [--assets 4]
        [--new-types]   # replaces, trailing stops, brackets and OCO pairs in the mix too

Workload (``matching.loadgen.OrderFlow``): about 60% passive limit adds, 25% cancels of live
orders, 15% marketable orders (limit orders through the touch and market orders, each taking
one to a few resting orders), fractional quantities, 500 users, over ``--assets`` books of
one shard, after a warm-up that builds the books. Three ways in, each timed separately:

* ``direct``: the engine's methods with decoded arguments (the core itself);
* ``apply``:  ``Engine.apply(dict)``, the decoded wire command (what the shard calls);
* ``wire``:   JSON text in, canonical JSON events out (decode + apply + encode).

Throughput is wall time over the whole run (and, as the machine may be shared, commands per
second of the process's CPU time: ``time.process_time``); latency is timed per command in a
separate pass (the timer costs ~60 ns). Each figure is the median of ``--runs`` runs on fresh
engines.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matching.core import CORE_KIND, Engine
from matching.loadgen import OrderFlow
from matching.wire import decode_command, encode_command, encode_events

Call = tuple[Callable[..., Any], tuple[Any, ...]]


def compile_direct(engine: Engine, commands: list[dict[str, Any]]) -> list[Call]:
    """Decoded commands as (bound method, positional args)."""
    out: list[Call] = []
    for c in commands:
        kind = c["cmd"]
        if kind == "NEW_ORDER" and c.get("order_class") not in (None, "SIMPLE"):
            out.append((engine.apply, (c,)))  # linked: its legs decoded by apply
        elif kind == "NEW_ORDER":
            out.append(
                (
                    engine.new_order,
                    (
                        c["order_id"],
                        c["user_id"],
                        c["asset_id"],
                        sys.intern(c["side"]),
                        sys.intern(c["order_type"]),
                        sys.intern(c["tif"]),
                        c["quantity"] or 0,
                        c["price"] or 0,
                        c["stop_price"] or 0,
                        c["ts"],
                        c["notional"] or 0,
                        c.get("stp"),
                        c.get("trail_amount") or 0,
                        c.get("trail_bps") or 0,
                    ),
                )
            )
        elif kind == "CANCEL":
            out.append((engine.cancel, (c["order_id"], c["asset_id"], c["ts"])))
        elif kind == "REPLACE":
            args = (c["order_id"], c["asset_id"], c["replace_id"], c["quantity"])
            terms = (c["price"] or 0, c["stop_price"] or 0, sys.intern(c["tif"]), c["ts"])
            trail = (c["trail_amount"] or 0, c["trail_bps"] or 0)
            out.append((engine.replace, args + terms + trail))
        else:
            out.append((engine.apply, (c,)))
    return out


def classify(warmup: list[dict[str, Any]], commands: list[dict[str, Any]]) -> list[str]:
    """What each command turned out to be: a passive add (rested, no fill), a marketable
    order (traded, or an IOC/market remainder cancelled), a cancel, or something else."""
    engine = Engine()
    for c in warmup:
        engine.apply(c)
    kinds: list[str] = []
    for c in commands:
        events = engine.apply(c)
        if c["cmd"] == "CANCEL":
            kinds.append("cancel")
        elif c["cmd"] != "NEW_ORDER":
            kinds.append(c["cmd"].lower())
        elif c["order_type"] == "TRAILING_STOP":
            kinds.append("trailing stop")
        elif c.get("order_class") in ("BRACKET", "OCO", "OTO"):
            kinds.append("linked")
        elif len(events) == 1 and events[0][0] == "ACCEPTED":
            kinds.append("passive add")
        else:
            kinds.append("marketable")
    return kinds


def percentile(sorted_ns: list[int], q: float) -> float:
    i = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[i] / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--commands", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--assets", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--new-types",
        action="store_true",
        help="add replaces, trailing stops and linked orders to the mix (loadgen new_types)",
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    flow = OrderFlow(seed=args.seed, assets=args.assets, users=500, new_types=args.new_types)
    warmup = flow.setup(depth=250) + flow.commands(50_000)
    commands = flow.commands(args.commands)
    raw = [encode_command(c) for c in commands]
    kinds = classify(warmup, commands)
    mix: dict[str, int] = {}
    for k in kinds:
        mix[k] = mix.get(k, 0) + 1
    print(f"core: {CORE_KIND} (BOURSE_PURE_CORE=1 forces the pure one)")
    print(
        f"workload: {len(commands):,} commands over {args.assets} books "
        f"(generated in {time.perf_counter() - t0:.1f}s)"
    )
    print("  mix: " + ", ".join(f"{k} {v / len(commands):.1%}" for k, v in sorted(mix.items())))

    results: dict[str, list[float]] = {"direct": [], "apply": [], "wire": []}
    cpu: dict[str, list[float]] = {"direct": [], "apply": [], "wire": []}  # per CPU second
    lat_all: list[list[int]] = []
    lat_kind: dict[str, list[int]] = {}
    stats: dict[str, int] = {}
    for run in range(args.runs):
        for mode in ("direct", "apply", "wire"):
            engine = Engine()
            for c in warmup:
                engine.apply(c)
            gc.collect()
            n = len(commands)
            if mode == "direct":
                calls = compile_direct(engine, commands)
                t, c0 = time.perf_counter(), time.process_time()
                for fn, a in calls:
                    fn(*a)
                dt = time.perf_counter() - t
            elif mode == "apply":
                apply = engine.apply
                t, c0 = time.perf_counter(), time.process_time()
                for c in commands:
                    apply(c)
                dt = time.perf_counter() - t
            else:
                apply = engine.apply
                t, c0 = time.perf_counter(), time.process_time()
                for i, s in enumerate(raw):
                    encode_events(apply(decode_command(s)), f"{i}-0")
                dt = time.perf_counter() - t
            results[mode].append(n / dt)
            cpu[mode].append(n / (time.process_time() - c0))
            if mode == "direct" and run == 0:
                stats = {"resting orders": len(engine.orders)}
                stats["fills"] = sum(b.trade_seq for b in engine.books.values())

        # latency pass (direct calls, timer around each command)
        engine = Engine()
        for c in warmup:
            engine.apply(c)
        gc.collect()
        calls = compile_direct(engine, commands)
        pc = time.perf_counter_ns
        lat: list[int] = [0] * len(calls)
        for i, (fn, a) in enumerate(calls):
            t1 = pc()
            fn(*a)
            lat[i] = pc() - t1
        lat_all.append(lat)
        if run == 0:
            for k, ns in zip(kinds, lat, strict=True):
                lat_kind.setdefault(k, []).append(ns)
        print(
            f"  run {run + 1}: direct {results['direct'][-1]:,.0f}/s, "
            f"apply {results['apply'][-1]:,.0f}/s, wire {results['wire'][-1]:,.0f}/s "
            f"(per CPU second: {cpu['direct'][-1]:,.0f}, {cpu['apply'][-1]:,.0f}, "
            f"{cpu['wire'][-1]:,.0f})"
        )

    print(
        f"  after the run: {stats['resting orders']:,} resting orders, "
        f"{stats['fills']:,} fills in total"
    )
    print(f"\nthroughput (median of {args.runs} runs), commands per second per shard:")
    for mode, label in (
        ("direct", "core (engine methods)"),
        ("apply", "core (Engine.apply on wire dicts)"),
        ("wire", "core + JSON decode/encode"),
    ):
        print(
            f"  {label:<36} {statistics.median(results[mode]):>12,.0f} /s   "
            f"(per CPU second {statistics.median(cpu[mode]):>9,.0f})"
        )
    runs_p = []
    for lat in lat_all:
        srt = sorted(lat)
        runs_p.append((percentile(srt, 0.5), percentile(srt, 0.99), percentile(srt, 0.999)))
    p50, p99, p999 = (statistics.median(x[i] for x in runs_p) for i in range(3))
    print(f"\nlatency per command (core, median of {args.runs} runs), microseconds:")
    print(f"  all commands   p50 {p50:6.2f}   p99 {p99:6.2f}   p99.9 {p999:7.2f}")
    for k, v in sorted(lat_kind.items()):
        srt = sorted(v)
        print(
            f"  {k:<14} p50 {percentile(srt, 0.5):6.2f}   p99 {percentile(srt, 0.99):6.2f}   "
            f"p99.9 {percentile(srt, 0.999):7.2f}   ({len(v):,})"
        )
    print(
        "\n"
        + json.dumps(
            {
                "core": CORE_KIND,
                "core_direct_ops": round(statistics.median(results["direct"])),
                "core_apply_ops": round(statistics.median(results["apply"])),
                "core_wire_ops": round(statistics.median(results["wire"])),
                "core_direct_cpu_ops": round(statistics.median(cpu["direct"])),
                "core_apply_cpu_ops": round(statistics.median(cpu["apply"])),
                "p50_us": round(p50, 2),
                "p99_us": round(p99, 2),
                "p999_us": round(p999, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
