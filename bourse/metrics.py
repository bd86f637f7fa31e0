"""Every Prometheus metric the platform exports, in one place (issue 20 item 4).

One module, so the dashboard (`ops/grafana/bourse.json`), the alert rules
(`ops/prometheus/alerts.yml`) and the code name the same series (a test checks the rules only
use metrics defined here). Labels are bounded by the schema and the deployment (a GraphQL root
field, a mutation, an error code, a shard), never by client input.

Every process of `bourse up` writes into one multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``,
set by `bourse up` to ``var/metrics``, emptied at start), and the API's ``/metrics`` serves the
sum over all of them: one scrape target for the whole platform. Without that variable (a test's
in-process API), a process exports only its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# ---- API ----
graphql_operations = Counter(
    "bourse_graphql_operations_total",
    "GraphQL operations by root field, type and outcome (ok, or the first error code).",
    ["field", "type", "outcome"],
)
graphql_seconds = Histogram(
    "bourse_graphql_operation_seconds",
    "GraphQL operation latency by root field.",
    ["field"],
    buckets=_LATENCY,
)
mutations = Counter(
    "bourse_mutations_total",
    "Mutations by name and outcome (ok, or the first error code of the payload).",
    ["mutation", "outcome"],
)
db_connections_in_use = Gauge(
    "bourse_db_connections_in_use",
    "PostgreSQL connections checked out of the pool, per process.",
    multiprocess_mode="livesum",
)

# Read replicas (models/replicas.py): labelled by replica (host:port/database, set by the
# deployment). Every process measures; the scrape shows the worst.
replica_lag_seconds = Gauge(
    "bourse_replica_lag_seconds",
    "A read replica's lag behind the primary (an upper bound, from WAL positions).",
    ["replica"],
    multiprocess_mode="livemax",
)
replica_available = Gauge(
    "bourse_replica_available",
    "1 while a read replica takes reads (reachable, replaying, within the lag bound), else 0.",
    ["replica"],
    multiprocess_mode="livemin",
)
db_reads = Counter(
    "bourse_db_reads_total",
    "Lag-tolerant read sessions by where they ran (replica, or primary as the fallback).",
    ["target"],
)

# ---- orders, matching, settlement ----
# Placed and refused orders: bourse_mutations_total{mutation="placeOrder"}.
orders_finished = Counter(
    "bourse_orders_finished_total",
    "Orders reaching a final status in settlement (EXECUTED, CANCELLED, REJECTED, EXPIRED).",
    ["status"],
)
fills_settled = Counter("bourse_fills_settled_total", "Fills applied to the ledger.", ["shard"])
shard_commands = Counter(
    "bourse_shard_commands_total", "Commands applied by a matching shard.", ["shard"]
)
shard_book_orders = Gauge(
    "bourse_shard_book_orders",
    "Orders resting in a shard's books.",
    ["shard"],
    multiprocess_mode="livemax",
)
shard_input_lag = Gauge(
    "bourse_shard_input_lag",
    "Commands in a shard's input stream not yet applied.",
    ["shard"],
    multiprocess_mode="livemax",
)
settlement_batch_seconds = Histogram(
    "bourse_settlement_batch_seconds",
    "Time to apply one batch of engine events to PostgreSQL.",
    ["shard"],
    buckets=_LATENCY,
)
settlement_lag = Gauge(
    "bourse_settlement_lag_events",
    "Engine events not yet settled (the consumer group's lag).",
    ["shard"],
    multiprocess_mode="livemax",
)
outbox_unsent = Gauge(
    "bourse_outbox_unsent",
    "Order commands committed in PostgreSQL but not yet sent to a shard.",
    multiprocess_mode="livemax",
)

# ---- market data, alerts, notifications ----
feed_ticks = Counter("bourse_feed_ticks_total", "Price ticks published by the market-data feed.")
alert_ticks = Counter("bourse_alert_ticks_total", "Quote ticks evaluated against price alerts.")
alerts_fired = Counter("bourse_alerts_fired_total", "Price alerts fired.")
notification_deliveries = Counter(
    "bourse_notification_deliveries_total",
    "Notification deliveries by channel and status.",
    ["channel", "status"],
)


def enabled_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def mark_dead(pid: int) -> None:
    """A child process exited: its live gauges stop counting (counters keep their totals)."""
    if enabled_dir() is not None:
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process (multiprocess mode) or of this one."""
    if enabled_dir() is not None:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
