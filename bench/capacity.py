"""The fleet for the seed's target, from the per-node figures measured on this machine.

    .venv/bin/python bench/capacity.py [--users 100000000] [--peak-orders 10000]
        [--websockets 3000000] [--headroom 0.5] [--pgbench] [--json]

Each component's capacity per node comes from a benchmark in this folder (``MEASURED`` names the
script and the figure; bench/README.md has the runs). ``--pgbench`` measures PostgreSQL's own
ceiling here first: ``pgbench`` running one order's writes (placement, then the settlement of its
fill: the same statements and rows per order as the platform writes, on tables of the same
shape) and uses that figure for the PostgreSQL rows. The model: every component must carry the
peak with ``--headroom`` spare (0.5: run at half of what a node can do, so a node's loss or a burst
does not tip it over); nodes per component = ceil(load / (capacity * (1 - headroom))). It prints
the fleet, and where it breaks first: the component that needs the most nodes per unit of load
and the one that cannot scale out (one writer per user's rows; one shard per asset).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Capacity:
    component: str
    per_node: float  # units of `unit` one node (2 cores) carries
    unit: str
    source: str  # the benchmark and figure it is read from


# Per 2-core node, as measured here (bench/README.md). Conservative: the closed-loop ceilings,
# not the best runs.
MEASURED: tuple[Capacity, ...] = (
    Capacity(
        "API node (placeOrder over GraphQL)", 220.0, "orders/s",
        "orders_http.py: 4.5 ms API CPU per order (closed loop) -> ~220/s per core-pair node",
    ),
    Capacity(
        "matching shard", 68_000.0, "commands/s",
        "matching_shard.py: 68,000 commands/s through Redis streams (core alone 352,000/s)",
    ),
    Capacity(
        "settlement consumer", 430.0, "orders/s",
        "orders_http.py: 2.3 ms settlement CPU per order, batches of a few events",
    ),
    Capacity(
        "PostgreSQL primary (order writes)", 1_300.0, "orders/s",
        "orders_http.py: 1.2 ms PostgreSQL CPU per order, 2 cores, fsync on (--pgbench measures)",
    ),
    Capacity(
        "websockets per API node", 4_400.0, "subscribers at 1 msg/s",
        "quotes_fanout.py: 2,000 subscribers x 1 quote/s took 45% of one core of the API"
        " process (61 KiB of memory each): ~4,400 per core; memory allows far more",
    ),
    Capacity(
        "Redis master (streams, pub/sub, caches)", 60_000.0, "operations/s",
        "matching_shard.py: 102,000 events/s appended by one shard; halved for pub/sub and caches",
    ),
)  # fmt: skip

# What one order costs each component (per order placed at the peak).
PER_ORDER = {
    "API node (placeOrder over GraphQL)": 1.0,
    "matching shard": 2.0,  # NEW_ORDER plus, on average, a cancel or a fill's share of events
    "settlement consumer": 1.0,
    "PostgreSQL primary (order writes)": 1.0,
    "Redis master (streams, pub/sub, caches)": 12.0,  # XADD, events, notices, quote and caches
}

# The order writes, on tables shaped as the platform's (models/orders, models/ledger, models/
# positions): placement (hold, order, outbox; the cash account's held) then the settlement of
# its fill (fill, four journal lines, two accounts, the position, the order, two order events).
PGBENCH_SCHEMA = """
CREATE SCHEMA capacity;  -- beside the scratch database's own (migrated) tables
SET search_path = capacity;
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(20,4) NOT NULL, held numeric(20,4) NOT NULL);
CREATE TABLE holds (id bigserial PRIMARY KEY, account_id int NOT NULL, amount numeric(20,4), status text, created_at timestamptz DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL, hold_id bigint, asset text, side text, qty numeric(20,8), price numeric(20,4), status text, filled numeric(20,8) DEFAULT 0, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE outbox (id bigserial PRIMARY KEY, order_id bigint NOT NULL, command text, sent_at timestamptz);
CREATE TABLE fills (id bigserial PRIMARY KEY, order_id bigint, qty numeric(20,8), price numeric(20,4), executed_at timestamptz DEFAULT now());
CREATE TABLE journal (id bigserial PRIMARY KEY, account_id int, amount numeric(20,4), reference bigint, created_at timestamptz DEFAULT now());
CREATE TABLE positions (user_id int, asset text, qty numeric(20,8), cost numeric(20,4), PRIMARY KEY (user_id, asset));
CREATE TABLE order_events (id bigserial PRIMARY KEY, user_id int, order_id bigint, event text, payload text, created_at timestamptz DEFAULT now());
CREATE INDEX ON orders (user_id, created_at);
CREATE INDEX ON journal (account_id, id);
CREATE INDEX ON order_events (user_id, id);
INSERT INTO accounts SELECT g, 1000000, 0 FROM generate_series(1, 20000) g;
INSERT INTO positions SELECT g, 'ACME', 100, 10000 FROM generate_series(1, 10000) g;
"""  # noqa: E501

PGBENCH_ORDER = """
\\set u random(1, 10000)
\\set px random(9000, 11000)
BEGIN;
UPDATE accounts SET held = held + (:px::numeric / 100) WHERE id = :u;
INSERT INTO holds (account_id, amount, status) VALUES (:u, (:px::numeric / 100), 'ACTIVE');
INSERT INTO orders (user_id, hold_id, asset, side, qty, price, status)
  VALUES (:u, currval('holds_id_seq'), 'ACME', 'BUY', 1, (:px::numeric / 100), 'OPEN');
INSERT INTO outbox (order_id, command) VALUES (currval('orders_id_seq'), '{"command":"NEW_ORDER"}');
COMMIT;
BEGIN;
INSERT INTO fills (order_id, qty, price) VALUES (currval('orders_id_seq'), 1, (:px::numeric / 100));
INSERT INTO journal (account_id, amount, reference) VALUES
  (:u, -(:px::numeric / 100), currval('fills_id_seq')),
  (10000 + :u, (:px::numeric / 100), currval('fills_id_seq')),
  (:u, 0, currval('fills_id_seq')), (10000 + :u, 0, currval('fills_id_seq'));
UPDATE accounts SET balance = balance - (:px::numeric / 100), held = held - (:px::numeric / 100)
  WHERE id = :u;
UPDATE accounts SET balance = balance + (:px::numeric / 100) WHERE id = 10000 + :u;
UPDATE positions SET qty = qty + 1, cost = cost + (:px::numeric / 100)
  WHERE user_id = :u AND asset = 'ACME';
UPDATE orders SET status = 'EXECUTED', filled = 1, updated_at = now()
  WHERE id = currval('orders_id_seq');
UPDATE holds SET status = 'CONSUMED' WHERE id = currval('holds_id_seq');
INSERT INTO order_events (user_id, order_id, event, payload) VALUES
  (:u, currval('orders_id_seq'), 'ACCEPTED', '{}'), (:u, currval('orders_id_seq'), 'FILL', '{}');
COMMIT;
"""


async def measure_pgbench(seconds: int, clients: int) -> tuple[float, str]:
    """Orders/s PostgreSQL commits here for PGBENCH_ORDER (two transactions per order)."""
    from bench.scratch import scratch_settings  # a fresh database, dropped at the end

    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    async with scratch_settings("capacity") as settings:
        assert settings.database_url
        url = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGOPTIONS": "-c search_path=capacity"}
        made = subprocess.run(
            ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", PGBENCH_SCHEMA],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode != 0:
            raise RuntimeError(f"psql could not create the tables:\n{made.stderr}")
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(PGBENCH_ORDER)
            script.flush()
            run = subprocess.run(
                [binary, "-n", "-f", script.name, "-c", str(clients), "-j", "2",
                 "-T", str(seconds), "-M", "prepared", url],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode != 0:
                raise RuntimeError(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", run.stdout)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{run.stdout}\n{run.stderr}")
    # pgbench's "transaction" is one run of the script: one order's placement and settlement.
    return float(found.group(1)), run.stdout


def fleet(
    capacities: tuple[Capacity, ...], *, peak_orders: float, websockets: float, headroom: float
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for cap in capacities:
        if cap.component == "websockets per API node":
            load = websockets
        else:
            load = peak_orders * PER_ORDER[cap.component]
        usable = cap.per_node * (1 - headroom)
        rows.append({**asdict(cap), "load": load, "nodes": max(1, math.ceil(load / usable))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000_000)
    parser.add_argument("--peak-orders", type=float, default=10_000.0, help="orders/s at peak")
    parser.add_argument(
        "--websockets", type=float, default=None,
        help="open websockets at peak (default: 3%% of users)",
    )  # fmt: skip
    parser.add_argument("--headroom", type=float, default=0.5)
    parser.add_argument("--pgbench", action="store_true", help="measure PostgreSQL here first")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    websockets = args.websockets if args.websockets is not None else args.users * 0.03

    capacities = MEASURED
    if args.pgbench:
        per_s, _ = asyncio.run(measure_pgbench(args.pgbench_seconds, args.pgbench_clients))
        capacities = tuple(
            Capacity(c.component, per_s, c.unit,
                     f"pgbench here: {per_s:,.0f} orders/s (placement + settlement of one fill,"
                     f" {args.pgbench_clients} clients, {args.pgbench_seconds} s)")
            if c.component.startswith("PostgreSQL") else c
            for c in capacities
        )  # fmt: skip
    rows = fleet(
        capacities, peak_orders=args.peak_orders, websockets=websockets, headroom=args.headroom
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"Target: {args.users:,} users, {args.peak_orders:,.0f} orders/s at peak, "
        f"{websockets:,.0f} open websockets; headroom {args.headroom:.0%}\n"
    )
    print(f"{'component':44} {'per node':>14} {'load at peak':>16} {'nodes':>6}")
    for r in rows:
        print(
            f"{r['component']!s:44} {r['per_node']:>10,.0f} {r['unit']!s:.3} "
            f"{r['load']:>16,.0f} {r['nodes']:>6}"
        )
        print(f"    {r['source']}")
    need = {str(r["component"]): int(str(r["nodes"])) for r in rows}
    api = max(need["API node (placeOrder over GraphQL)"], need["websockets per API node"])
    # One settlement consumer per shard (workers/settlement.py): shards follow the consumers.
    shards = max(need["matching shard"], need["settlement consumer"])
    primaries = need["PostgreSQL primary (order writes)"]
    masters = need["Redis master (streams, pub/sub, caches)"]
    print("\nThe fleet (2-core nodes; docs/SCALING.md has the layout):")
    print(f"  API nodes behind HAProxy:          {api}")
    print(f"  matching shards (+ settlement):    {shards} shard processes, {shards} consumers")
    print(f"  PostgreSQL primaries (by user):    {primaries}, each with a synchronous replica")
    print(f"  Redis Cluster masters:             {masters}, each with a replica")
    total = api + shards + primaries * 2 + masters * 2
    print(f"  nodes in all:                      {total}")
    pg = next(r for r in rows if str(r["component"]).startswith("PostgreSQL"))
    if int(str(pg["nodes"])) > 1:
        print(
            f"Breaks first: PostgreSQL. One primary carries {pg['per_node']:,.0f} orders/s; the "
            f"peak needs {pg['nodes']} primaries' worth of writes, which one primary and its "
            "replicas cannot give (replicas take reads, not writes): the order, ledger and "
            "position tables must be partitioned by user across primaries (docs/SCALING.md)."
        )
    one_asset = args.peak_orders * PER_ORDER["matching shard"] * 0.2
    shard = next(r for r in rows if r["component"] == "matching shard")
    print(
        f"A single asset's ceiling is one shard: if the busiest asset takes 20% of the peak "
        f"({one_asset:,.0f} commands/s) it needs {one_asset / float(str(shard['per_node'])):.0%} "
        "of one shard (an asset cannot be split across shards)."
    )


if __name__ == "__main__":
    main()
