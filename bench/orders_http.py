"""placeOrder over HTTP against the whole platform (API, matching shards, settlement, liquidity
provider: real processes, as in production), with many concurrent clients. Prints orders/s and
p50/p99/p99.9 latency (open loop at a target rate, closed loop at a fixed concurrency), the
fill-to-subscriber latency seen on `orderUpdates` websockets, the same figures for a bare
Starlette endpoint doing the same transaction (`bare_order_endpoint.py`), and a py-spy profile of
the API process.

    .venv/bin/python bench/orders_http.py [--rate 1000] [--duration 20] [--runs 3]
        [--open-connections 128] [--connections 64] [--users 200] [--subscribers 20]
        [--targets graphql,bare] [--modes open,closed] [--no-profile] [--assets 1]

``--assets N`` trades N assets spread over the shards (BNCH first; each order goes to the next
one round-robin), so each shard and its settlement consumer get a share; 1 (the default) is the
one asset every earlier figure was measured on.

Uses DATABASE_URL / REDIS_URL when set (else the embedded servers under var/bench), in a scratch
database and Redis key prefix removed at the end. The load generator (`httpload.py`, raw
asyncio streams on uvloop) and the websocket subscribers run in this process; the platform runs
in child processes. Everything shares the machine's cores: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import asyncpg  # noqa: E402
import uvloop  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.httpload import Result, build_request, closed_loop, median, open_loop, percentile  # noqa: E402
from bench.scratch import scratch_settings  # noqa: E402
from bourse.clock import utcnow  # noqa: E402
from bourse.keys import GROUP as MATCHING_GROUP  # noqa: E402
from bourse.keys import events_key, input_key, shard_for  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from models import security  # noqa: E402
from models.accounts import ClientInfo  # noqa: E402
from models.assets import AssetClass, NewAsset  # noqa: E402
from models.ledger import AccountKind, Leg  # noqa: E402
from models.positions import LotSource, open_lot  # noqa: E402
from models.services import Services, open_services  # noqa: E402
from models.users import KycStatus, User  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

OUT = ROOT / "bench" / "out"
SYMBOL = "BNCH"
REFERENCE = "100.00"
PASSWORD = "Bench-Pass-42"
CASH = Decimal(10_000_000)
SHARES = Decimal(100_000)

# What a trading client asks back: the order's identity and state, no fills (a fills selection
# would add a dataloader query per request).
PLACE = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  order { id status orderType orderSubType quantity price timeInForce createdAt }
  errors { field code message } } }"""
UPDATES = """subscription { orderUpdates { event order { id status } fill { id timestamp } } }"""

# name → (weight, fills at once, input). Mostly marketable orders that fill against the
# liquidity provider (10 bps around 100, 3 levels of $25,000), some resting far from the touch.
MIX: dict[str, tuple[int, bool, dict[str, str]]] = {
    "buy market": (35, True, {"orderType": "BUY", "orderSubType": "MARKET", "quantity": "1"}),
    "sell market": (30, True, {"orderType": "SELL", "orderSubType": "MARKET", "quantity": "1"}),
    "buy limit through": (
        12, True, {"orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1", "price": "101.00"}
    ),
    "sell limit through": (
        13, True, {"orderType": "SELL", "orderSubType": "LIMIT", "quantity": "1", "price": "99.00"}
    ),
    "buy limit resting": (
        5, False, {"orderType": "BUY", "orderSubType": "LIMIT", "quantity": "1", "price": "80.00"}
    ),
    "sell limit resting": (
        5, False, {"orderType": "SELL", "orderSubType": "LIMIT", "quantity": "1", "price": "120.00"}
    ),
}  # fmt: skip
KINDS = list(MIX)
WEIGHTS = [MIX[k][0] for k in KINDS]

ORDER_ID = re.compile(rb'"order":\s*\{\s*"id":\s*"([0-9a-f-]{36})"')
NO_ERRORS = re.compile(rb'"errors":\s*\[\]')


# ---------------------------------------------------------------- setup


@dataclass
class Trader:
    user_id: uuid.UUID
    email: str
    token: str = ""


def bench_symbols(n: int, shards: int) -> list[str]:
    """``n`` asset symbols (BNCH first), spread over the shards as evenly as they can be."""
    chosen, per_shard = [SYMBOL], Counter([shard_for(SYMBOL, shards)])
    candidates = (f"BN{i:02d}" for i in range(100))
    while len(chosen) < n:
        fewest = min(range(shards), key=lambda k: per_shard[k])
        found = next(c for c in candidates if shard_for(c, shards) == fewest)
        chosen.append(found)
        per_shard[fewest] += 1
    return chosen


async def make_traders(
    services: Services, n: int, symbols: tuple[str, ...] | list[str] = (SYMBOL,)
) -> list[Trader]:
    """Users written straight to the database (registering through the API would spend most of
    the setup in argon2), funded with cash and shares by ledger postings, then signed in through
    `Accounts.login` (what the login mutation calls) for their access tokens."""
    hasher = services.accounts._hasher
    password_hash = await asyncio.to_thread(security.hash_password, hasher, PASSWORD)
    traders = [Trader(uuid.uuid4(), "") for _ in range(n)]
    for t in traders:
        t.email = f"bench.{t.user_id.hex[:16]}@example.com"
    ledger = services.ledger
    for chunk in range(0, n, 50):
        part = traders[chunk : chunk + 50]
        async with services.sessionmaker.begin() as s:
            for t in part:
                s.add(
                    User(
                        id=t.user_id,
                        username=f"b{t.user_id.hex[:16]}",
                        email=t.email,
                        password_hash=password_hash,
                        kyc_status=KycStatus.VERIFIED,  # the KYC gate is not what is measured
                    )
                )
            await s.flush()
            bank = await ledger.account_id(s, None, AccountKind.BANK, "USD")
            for t in part:
                cash = await ledger.account_id(s, t.user_id, AccountKind.CASH, "USD")
                await ledger.post(
                    s, "DEPOSIT", [Leg(cash, "USD", CASH), Leg(bank, "USD", -CASH)],
                    user_id=t.user_id,
                )  # fmt: skip
            for sym in symbols:
                inventory = await ledger.account_id(s, None, AccountKind.LIQUIDITY, sym)
                for t in part:
                    shares = await ledger.account_id(s, t.user_id, AccountKind.SHARES, sym)
                    await ledger.post(
                        s, "bench_grant",
                        [Leg(shares, sym, SHARES), Leg(inventory, sym, -SHARES)],
                        user_id=t.user_id,
                    )  # fmt: skip
                    # The position and its tax lot, as a transfer in books them: settlement
                    # keeps positions per fill and would find sells of shares it never saw.
                    await open_lot(
                        s, user_id=t.user_id, asset_id=sym, quantity=SHARES,
                        cost=SHARES * Decimal(REFERENCE), acquired_at=utcnow(),
                        source=LotSource.TRANSFER, source_id=f"bench:{t.user_id}:{sym}",
                    )  # fmt: skip
    client = ClientInfo(ip="127.0.0.1", user_agent="bench")
    sem = asyncio.Semaphore(4)

    async def sign_in(t: Trader) -> None:
        async with sem:
            issued = await services.accounts.login(t.email, PASSWORD, None, client)
            t.token = issued.access_token

    await asyncio.gather(*(sign_in(t) for t in traders))
    return traders


async def list_asset_unquoted(
    services: Services, symbols: tuple[str, ...] | list[str] = (SYMBOL,)
) -> None:
    """The bench's assets (24x7 equities at REFERENCE), without the liquidity provider."""
    await services.assets.upsert_many(
        [
            NewAsset(
                symbol=sym,
                name="Bench Corp",
                asset_class=AssetClass.EQUITY,
                currency="USD",
                tick_size="0.01",
                fractionable=True,
                tradable=True,
                reference_price=REFERENCE,
                market_calendar="24x7",
            )
            for sym in symbols
        ]
    )


async def list_asset(services: Services, symbols: tuple[str, ...] | list[str] = (SYMBOL,)) -> None:
    await list_asset_unquoted(services, symbols)
    await services.liquidity.configure(list(symbols))
    deadline = time.monotonic() + 30
    for sym in symbols:
        while True:
            book = await services.exchange.book(sym)
            if book and book.get("bids") and book.get("asks"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no two-sided book for {sym}: {book}")
            await asyncio.sleep(0.1)


async def drained(redis: Redis, prefix: str, shards: int, timeout: float = 120) -> float:
    """Wait until the shards and the settlement consumer have nothing left to do; returns how
    long that took (the backlog a run left behind)."""
    start = time.monotonic()
    while True:
        busy = False
        for k in range(shards):
            for key, group in (
                (input_key(prefix, k), MATCHING_GROUP),
                (events_key(prefix, k), "settlement"),
            ):
                with contextlib.suppress(Exception):
                    for g in await redis.xinfo_groups(key):
                        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                        if name == group and (g.get("pending") or g.get("lag")):
                            busy = True
        if not busy or time.monotonic() - start > timeout:
            return time.monotonic() - start
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- API targets


@dataclass
class Target:
    name: str  # graphql | bare
    path: str
    command: list[str]

    def body(self, fields: dict[str, str], symbol: str = SYMBOL) -> bytes:
        doc: dict[str, Any] = {"assetId": symbol, **fields}
        if self.name == "graphql":
            return json.dumps({"query": PLACE, "variables": {"input": doc}}).encode()
        return json.dumps(doc).encode()


TARGETS = {
    "graphql": Target("graphql", "/graphql", [sys.executable, "-m", "bff.serve"]),
    "bare": Target(
        "bare", "/orders", [sys.executable, str(ROOT / "bench" / "bare_order_endpoint.py")]
    ),
}


async def switch_api(stack: Stack, target: Target, processes: int = 1) -> None:
    """Stop the API processes, then start ``processes`` of ``target`` on the one port
    (``BOURSE_API_PROCESSES``: SO_REUSEPORT), named ``api``, ``api-2``, …"""
    for name in [n for n in stack.procs if n == "api" or n.startswith("api-")]:
        proc = stack.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    stack.commands["api"] = target.command
    stack.env["BOURSE_API_PROCESSES"] = str(processes)
    OUT.mkdir(exist_ok=True)
    # The API's stderr goes to a file: under overload it logs every failed request's traceback.
    for i in range(processes):
        name = "api" if i == 0 else f"api-{i + 1}"
        with (OUT / f"{name}-{target.name}.log").open("ab") as log:
            stack.procs[name] = await asyncio.create_subprocess_exec(
                *target.command, env=stack.env, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
    await stack.wait_ready()


async def warm_up(bench: Bench, target: Target) -> None:
    """A few seconds of load, not recorded: the first requests of a fresh API process pay for
    mapper configuration, statement compilation and pool growth."""
    await closed_loop("127.0.0.1", bench.stack.port, 16, 3.0, bench.picker(target), bench.checker())
    await drained(bench.redis, bench.stack.prefix, bench.stack.shards)


# ---------------------------------------------------------------- fill-to-subscriber


@dataclass
class FillWatch:
    """Orders of the subscribed users (sent and answered, wall clock ns) and the arrival of
    their FILL update on the websocket (with the fill's engine timestamp)."""

    placed: dict[str, tuple[int, int]] = field(default_factory=dict)
    filled: dict[str, tuple[int, int]] = field(default_factory=dict)
    marketable: int = 0

    def clear(self) -> None:
        self.placed.clear()
        self.filled.clear()
        self.marketable = 0


async def subscribe(base_url: str, token: str, watch: FillWatch, ready: asyncio.Event) -> None:
    url = base_url.replace("http://", "ws://") + "/graphql"
    conn: ClientConnection
    async with connect(url, subprotocols=["graphql-transport-ws"]) as conn:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await conn.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await conn.send(json.dumps({"id": "u", "type": "subscribe", "payload": {"query": UPDATES}}))
        ready.set()
        async for raw in conn:
            arrived = time.time_ns()
            msg = json.loads(raw)
            if msg.get("type") != "next":
                continue
            update = msg["payload"]["data"]["orderUpdates"]
            if update["event"] == "FILL":
                stamp = datetime.fromisoformat(update["fill"]["timestamp"])
                watch.filled[update["order"]["id"]] = (arrived, int(stamp.timestamp() * 1e6) * 1000)


@dataclass
class FillStats:
    n: int
    expected: int
    resp: list[float]  # FILL arrival - placeOrder answer arrival (ms; negative: FILL first)
    sent: list[float]  # FILL arrival - placeOrder request sent (ms)
    engine: list[float]  # FILL arrival - the fill's engine timestamp (ms)


def fill_stats(watch: FillWatch) -> FillStats:
    resp, sent, engine = [], [], []
    for order_id, (arrived, stamp) in watch.filled.items():
        found = watch.placed.get(order_id)
        if found is None:
            continue
        sent_ns, resp_ns = found
        resp.append((arrived - resp_ns) / 1e6)
        sent.append((arrived - sent_ns) / 1e6)
        engine.append((arrived - stamp) / 1e6)
    return FillStats(len(resp), watch.marketable, resp, sent, engine)


# ---------------------------------------------------------------- CPU accounting


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if (p / "comm").read_text().strip() == name:
                    found.append(int(p.name))
    return found


def _machine_busy() -> tuple[float, float]:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / os.sysconf("SC_CLK_TCK"), sum(parts) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(stack: Stack, pg_pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of each platform process, of this database's PostgreSQL backends
    (``_pg:<pid>``: backends that come and go between snapshots are partly missed) and of
    the whole machine."""
    snap = {name: _cpu_seconds(proc.pid) for name, proc in stack.procs.items()}
    snap["load generator + subscribers"] = _cpu_seconds(os.getpid())
    for pid in pg_pids:
        snap[f"_pg:{pid}"] = _cpu_seconds(pid)
    snap["redis-server"] = sum(_cpu_seconds(p) for p in _pids_named("redis-server"))
    busy, total = _machine_busy()
    snap["_busy"], snap["_total"] = busy, total
    return snap


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """CPU used per process during a run, in cores (1.00 = one core busy all the time)."""
    parts = []
    for name in after:
        if not name.startswith("_") and name in before:
            parts.append(f"{name} {(after[name] - before[name]) / wall:.2f}")
    parts.append(f"postgres {pg_cpu(before, after) / wall:.2f}")
    busy = (after["_busy"] - before["_busy"]) / wall
    return "cores used: " + ", ".join(parts) + f"; machine total {busy:.2f}"


def pg_cpu(before: dict[str, float], after: dict[str, float]) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith("_pg:"))


def cpu_line(per_order: dict[str, float]) -> str:
    total = sum(v for k, v in per_order.items() if not k.startswith("load"))
    parts = [f"{k} {v:.2f}" for k, v in per_order.items()]
    capacity = 2000 / total if total else float("nan")
    return ", ".join(parts) + f"; platform total {total:.1f} (≈ {capacity:.0f} orders/s on 2 cores)"


# ---------------------------------------------------------------- one run


@dataclass
class Bench:
    args: argparse.Namespace
    stack: Stack
    redis: Redis
    traders: list[Trader]
    subscribers: set[int]
    watch: FillWatch = field(default_factory=FillWatch)
    results: dict[tuple[str, str], list[Result]] = field(default_factory=lambda: defaultdict(list))
    fills: dict[tuple[str, str], list[FillStats]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, list[list[list[bytes]]]] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=lambda: [SYMBOL])
    cpu: dict[tuple[str, str], list[dict[str, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    pg: Any = None  # an asyncpg connection to the scratch database, for pg_stat_database
    kinds: Counter[str] = field(default_factory=Counter)

    async def pg_pids(self) -> list[int]:
        if self.pg is None:
            return []
        rows = await self.pg.fetch(
            "select pid from pg_stat_activity where datname = current_database()"
            " and pid <> pg_backend_pid()"
        )
        return [int(r["pid"]) for r in rows]

    async def pg_stats(self) -> tuple[int, int]:
        """(sessions opened, transactions committed) in the scratch database so far."""
        if self.pg is None:
            return 0, 0
        row = await self.pg.fetchrow(
            "select sessions, xact_commit from pg_stat_database where datname = current_database()"
        )
        return int(row["sessions"] or 0), int(row["xact_commit"] or 0)

    def build(self, target: Target) -> None:
        host = f"127.0.0.1:{self.stack.port}"
        self.requests[target.name] = [
            [
                [
                    build_request(host, target.path, target.body(MIX[k][2], sym),
                                  {"Authorization": f"Bearer {t.token}"})
                    for sym in self.symbols
                ]
                for k in KINDS
            ]
            for t in self.traders
        ]  # fmt: skip

    def picker(self, target: Target) -> Any:
        table = self.requests[target.name]
        n = len(self.traders)
        rng = random.Random(7)
        kinds = rng.choices(range(len(KINDS)), WEIGHTS, k=100_003)
        counter = iter(range(10**12))

        assets = len(self.symbols)

        def pick() -> tuple[bytes, object]:
            i = next(counter)
            user, kind = rng.randrange(n), kinds[i % len(kinds)]
            return table[user][kind][i % assets], (user, kind)

        return pick

    def checker(self) -> Any:
        watch, subscribers = self.watch, self.subscribers

        def check(status: int, body: bytes, tag: object, sent: int, done: int) -> bool:
            if status != 200 or NO_ERRORS.search(body) is None:
                return False
            user, kind = cast(tuple[int, int], tag)
            if user in subscribers and MIX[KINDS[kind]][1]:
                found = ORDER_ID.search(body)
                if found is not None:
                    watch.placed[found.group(1).decode()] = (sent, done)
                    watch.marketable += 1
            return True

        return check

    async def run(self, target: Target, mode: str, label: str = "", record: bool = True) -> Result:
        a = self.args
        self.watch.clear()
        host, port = "127.0.0.1", self.stack.port
        sessions, commits = await self.pg_stats()
        before = cpu_snapshot(self.stack, await self.pg_pids())
        started = time.perf_counter()
        if mode == "open":
            result = await open_loop(
                host, port, a.open_connections, a.rate, a.duration,
                self.picker(target), self.checker(),
            )  # fmt: skip
        else:
            result = await closed_loop(
                host, port, a.connections, a.duration, self.picker(target), self.checker()
            )
        wall = time.perf_counter() - started
        after = cpu_snapshot(self.stack, await self.pg_pids())
        backlog = await drained(self.redis, self.stack.prefix, self.stack.shards)
        settled = cpu_snapshot(self.stack, await self.pg_pids())  # with the run's settlement
        sessions2, commits2 = await self.pg_stats()
        sessions, commits = sessions2 - sessions, commits2 - commits
        per_order = {
            k: (settled[k] - before[k]) * 1000 / max(1, result.ok)
            for k in settled
            if k in before and not k.startswith("_")
        }
        per_order["postgres"] = pg_cpu(before, settled) * 1000 / max(1, result.ok)
        await asyncio.sleep(1.0)  # the last notices on their way to the websockets
        key = (target.name, mode)
        print(f"  {label or describe(target.name, mode, a)}: {line(result)}")
        if result.error_samples:
            print(f"    errors, e.g.: {result.error_samples[:2]}")
        print(f"    {cpu_share(before, after, wall)}")
        print("    CPU per order (ms, until settled): " + cpu_line(per_order))
        print(
            f"    PostgreSQL: {commits / max(1, result.ok):.1f} commits per order (all processes), "
            f"{sessions} sessions opened ({sessions / wall:.1f}/s)"
        )
        if backlog > 0.5:
            print(f"    matching + settlement still busy {backlog:.1f} s after the last answer")
        if record:
            self.cpu[key].append(per_order)
        if target.name == "graphql" and self.subscribers and record:
            fs = fill_stats(self.watch)
            print(f"    {fill_line(fs)}")
            self.fills[key].append(fs)
        if record:
            self.results[key].append(result)
        return result


def describe(target: str, mode: str, a: argparse.Namespace) -> str:
    if mode == "open":
        return f"{target:<7} open loop {a.rate:g}/s, {a.open_connections} conns"
    return f"{target:<7} closed loop, {a.connections} conns"


def ms(v: float) -> str:
    return f"{v * 1000:7.1f} ms"


def line(r: Result) -> str:
    return (
        f"{r.rate:7.0f} orders/s  p50 {ms(r.pct(0.5))}  p99 {ms(r.pct(0.99))}  "
        f"p99.9 {ms(r.pct(0.999))}  ok {r.ok}  errors {r.errors}  dropped {r.dropped}"
    )


def fill_line(fs: FillStats) -> str:
    if not fs.n:
        return f"fill→subscriber: no FILL matched ({fs.expected} marketable orders)"
    early = sum(1 for v in fs.resp if v < 0) / fs.n
    return (
        f"fill→subscriber ({fs.n}/{fs.expected} orders): "
        f"sent→FILL p50 {percentile(fs.sent, 0.5):.1f} p99 {percentile(fs.sent, 0.99):.1f} ms; "
        f"answer→FILL p50 {percentile(fs.resp, 0.5):.1f} p99 {percentile(fs.resp, 0.99):.1f} ms "
        f"(FILL first {early:.0%}); "
        f"engine ts→FILL p50 {percentile(fs.engine, 0.5):.1f} "
        f"p99 {percentile(fs.engine, 0.99):.1f} ms"
    )


# ---------------------------------------------------------------- profile


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        print("installing py-spy into the venv (pip install py-spy)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return found


CATEGORIES = [  # (label, substring of a frame's file), matched from the leaf upwards
    ("asyncpg (driver, protocol)", "asyncpg/"),
    ("SQLAlchemy (ORM, core, pool)", "sqlalchemy/"),
    ("GraphQL: graphql-core (parse, validate, execute)", "graphql/"),
    ("GraphQL: Strawberry (view, schema, extensions)", "strawberry/"),
    ("redis-py", "redis/"),
    ("logging (structlog, stdlib)", "structlog/"),
    ("logging (structlog, stdlib)", "logging/"),
    ("JSON", "json/"),
    ("uvicorn / httptools (HTTP)", "uvicorn/"),
    ("Starlette", "starlette/"),
    ("websockets", "websockets/"),
    ("pydantic", "pydantic"),
    ("platform code (models, resolvers, bff, matching)", "models/"),
    ("platform code (models, resolvers, bff, matching)", "resolvers/"),
    ("platform code (models, resolvers, bff, matching)", "bff/"),
    ("platform code (models, resolvers, bff, matching)", "matching/"),
    ("stdlib: decimal, uuid, datetime, enum, dataclasses", "uuid.py"),
    ("stdlib: decimal, uuid, datetime, enum, dataclasses", "enum.py"),
    ("stdlib: decimal, uuid, datetime, enum, dataclasses", "dataclasses.py"),
    ("asyncio / uvloop (event loop, tasks)", "asyncio/"),
    ("asyncio / uvloop (event loop, tasks)", "uvloop"),
]
MARKERS = [  # (label, substring of a frame) for inclusive shares
    # SQLAlchemy's async API runs the ORM in greenlets: their stacks start at Session.execute /
    # flush / get, without the coroutine that called them, so a share "inside OrderBook.place"
    # would leave its SQLAlchemy work out. These markers are what can be told apart reliably.
    ("HTTP request inside the app (request-id middleware down)", "__call__ (bff/request_id.py"),
    ("  Strawberry: the whole GraphQL operation", "execute (strawberry/schema/schema.py"),
    ("  GraphQL parse", "parse (graphql/language/parser.py"),
    ("  GraphQL validate", "validate (graphql/validation/validate.py"),
    ("  access log line (structlog, filtered out at WARNING)", "info (structlog"),
    ("ORM flush (unit of work: INSERT order, hold, outbox)", "Session._flush (sqlalchemy"),
    ("SQL compilation (statement cache misses)", "Compiled.__init__ (sqlalchemy"),
    ("statement cache keys", "_generate_cache_key (sqlalchemy"),
    ("pool checkout (incl. pre-ping)", "_checkout (sqlalchemy/pool/base.py"),
    ("  pre-ping", "_do_ping_w_event"),
    ("new PostgreSQL connections (pool overflow churn)", "__connect (sqlalchemy/pool/base.py"),
    ("exception tracebacks (errors logged)", "traceback.py"),
]


def top_profile(path: Path, top: int = 15) -> None:
    stacks: list[tuple[list[str], int]] = []
    for raw in path.read_text().splitlines():
        joined, _, n = raw.rpartition(" ")
        if joined and n.isdigit():
            stacks.append((joined.split(";"), int(n)))
    total = sum(c for _, c in stacks)
    if not total:
        print("  (no samples)")
        return
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    for frames, count in stacks:
        by_leaf[frames[-1]] += count
        label = "other (C extensions, interpreter)"
        for frame in reversed(frames):
            hit = next((lbl for lbl, sub in CATEGORIES if sub in frame), None)
            if hit is not None:
                label = hit
                break
        by_category[label] += count
    print(f"  {total} samples while busy; self time by component:")
    for label, count in by_category.most_common():
        print(f"    {count / total:6.1%}  {label}")
    print("  inclusive (the share of samples with this frame anywhere in the stack):")
    for label, sub in MARKERS:
        count = sum(c for frames, c in stacks if any(sub in f for f in frames))
        print(f"    {count / total:6.1%}  {label}")
    print(f"  top {top} functions by self time:")
    for frame, count in by_leaf.most_common(top):
        print(f"    {count / total:6.1%}  {frame}")


async def profile(bench: Bench, target: Target) -> None:
    """A closed-loop run with py-spy attached to the API process and to the settlement
    consumer; prints where each spends its time."""
    a = bench.args
    OUT.mkdir(exist_ok=True)
    spies = []
    settlement = f"settlement-{shard_for(SYMBOL, bench.stack.shards)}"  # the asset's shard
    for proc in ("api", settlement):
        name = proc if proc == "api" else f"settlement-{target.name}"
        out = OUT / f"orders-{target.name if proc == 'api' else name}.collapsed.txt"
        spy = await asyncio.create_subprocess_exec(
            py_spy(), "record", "--pid", str(bench.stack.procs[proc].pid), "--rate", "200",
            "--nonblocking", "--duration", str(int(a.duration)), "--format", "raw",
            "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        spies.append((proc, out, spy))
    await asyncio.sleep(1.0)
    await bench.run(target, "closed", f"{target.name:<7} closed loop under py-spy", record=False)
    for proc, out, spy in spies:
        _, err = await spy.communicate()
        if spy.returncode != 0 or not out.exists():
            print(f"  py-spy on {proc} failed ({spy.returncode}): {err.decode()[-500:]}")
            continue
        print(f"  {proc}: {out.relative_to(ROOT)} (collapsed stacks; open in speedscope.app)")
        top_profile(out, 15 if proc == "api" else 10)


# ---------------------------------------------------------------- main


def summary(bench: Bench, ceiling: float | None = None) -> None:
    a = bench.args
    print(f"\nmedians of {a.runs} run(s)")
    med: dict[tuple[str, str], tuple[float, float, float]] = {}
    for (target, mode), results in bench.results.items():
        rate = median([r.rate for r in results])
        p50 = median([r.pct(0.5) for r in results])
        p99 = median([r.pct(0.99) for r in results])
        p999 = median([r.pct(0.999) for r in results])
        errors = sum(r.errors + r.dropped for r in results)
        med[(target, mode)] = (rate, p50, p99)
        print(
            f"  {describe(target, mode, a)}: {rate:7.0f} orders/s  p50 {ms(p50)}  "
            f"p99 {ms(p99)}  p99.9 {ms(p999)}  errors+dropped {errors}"
        )
    for (target, mode), runs in bench.cpu.items():
        names = runs[0].keys()
        med_cpu = {k: median([r.get(k, 0.0) for r in runs]) for k in names}
        print(f"  CPU per order, {describe(target, mode, a)}: {cpu_line(med_cpu)}")
    for (target, mode), stats in bench.fills.items():
        sent = median([percentile(f.sent, 0.5) for f in stats if f.n])
        sent99 = median([percentile(f.sent, 0.99) for f in stats if f.n])
        resp = median([percentile(f.resp, 0.5) for f in stats if f.n])
        resp99 = median([percentile(f.resp, 0.99) for f in stats if f.n])
        eng = median([percentile(f.engine, 0.5) for f in stats if f.n])
        eng99 = median([percentile(f.engine, 0.99) for f in stats if f.n])
        print(
            f"  fill→subscriber, {describe(target, mode, a)}: sent→FILL p50 {sent:.1f} "
            f"p99 {sent99:.1f} ms; answer→FILL p50 {resp:.1f} p99 {resp99:.1f} ms; "
            f"engine ts→FILL p50 {eng:.1f} p99 {eng99:.1f} ms"
        )
    for mode in ("closed", "open"):
        g, b = med.get(("graphql", mode)), med.get(("bare", mode))
        if g and b:
            print(
                f"  GraphQL / bare, {mode} loop: throughput {g[0] / b[0]:.2f}x, "
                f"p50 {g[1] / b[1]:.2f}x, p99 {g[2] / b[2]:.2f}x"
            )
    if ceiling:
        print(f"  PostgreSQL's ceiling here (pgbench, one order's writes): {ceiling:,.0f} orders/s")
        for (target, mode), (rate, _, _) in med.items():
            print(f"    {describe(target, mode, a)}: {rate / ceiling:.2f} of it")


async def subscribers_up(bench: Bench) -> list[asyncio.Task[None]]:
    tasks = []
    for i in sorted(bench.subscribers):
        ready = asyncio.Event()
        tasks.append(
            asyncio.create_task(
                subscribe(bench.stack.base_url, bench.traders[i].token, bench.watch, ready)
            )
        )
        await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.5)  # the server subscribes to Redis before events can flow
    return tasks


async def subscribers_down(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def timer(what: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"{what}: {time.perf_counter() - start:.1f} s")


async def main(args: argparse.Namespace) -> None:
    targets = [TARGETS[t] for t in args.targets.split(",")]
    modes = args.modes.split(",")
    ceiling: float | None = None
    if args.pgbench:
        # The machine's own reference, before the platform starts (nothing else on the cores):
        # pgbench running one order's writes, placement and the settlement of its fill, on
        # tables of the same shape (bench/capacity.py), so orders/s reads as a fraction of it.
        from bench.capacity import measure_pgbench

        with timer("pgbench (one order's writes, 16 clients, 10 s)"):
            ceiling, _ = await measure_pgbench(10, 16)
        print(f"PostgreSQL's ceiling here: {ceiling:,.0f} orders/s")
    async with scratch_settings(
        "bench-orders",
        access_token_ttl_seconds=6 * 3600,
        # Cheap password hashes: sign-in is setup here, not what is measured.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    ) as settings:
        url = settings.database_url
        assert url
        assert settings.redis_url
        redis = Redis.from_url(settings.redis_url)
        stack = Stack(settings, shards=args.shards)
        stack.env["BOURSE_ACCESS_TOKEN_TTL_SECONDS"] = str(6 * 3600)
        bench: Bench | None = None
        try:
            with timer(f"platform started ({args.shards} shards, settlement, liquidity)"):
                for proc in stack.commands:
                    if proc != "api":
                        await stack.start(proc)
            s = stack.settings
            assert s.database_url
            assert s.redis_url
            async with open_services(s, s.database_url, s.redis_url, pool_size=4) as services:
                symbols = bench_symbols(args.assets, args.shards)
                with timer(f"{', '.join(symbols)} listed and quoted by the liquidity provider"):
                    await list_asset(services, symbols)
                with timer(f"{args.users} users created, funded and signed in"):
                    traders = await make_traders(services, args.users, symbols)
            bench = Bench(args, stack, redis, traders, set(range(args.subscribers)))
            bench.symbols = symbols
            u = make_url(url)
            bench.pg = await asyncpg.connect(
                host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
            )
            for t in targets:
                bench.build(t)
            mix = ", ".join(f"{k} {MIX[k][0]}%" for k in KINDS)
            print(f"\nmix: {mix}; users {args.users}, {args.subscribers} on orderUpdates")
            print(f"runs of {args.duration:g} s")
            current: str | None = None
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs}")
                for t in targets:
                    if current != t.name:
                        await switch_api(stack, t, args.api_processes)
                        current = t.name
                        await warm_up(bench, t)
                    subs = await subscribers_up(bench) if t.name == "graphql" else []
                    try:
                        for mode in modes:
                            await bench.run(t, mode)
                    finally:
                        await subscribers_down(subs)
            summary(bench, ceiling)
            if args.profile:
                print("\nprofile (py-spy, 200 Hz: the API process and the settlement consumer)")
                for t in targets:
                    if current != t.name:
                        await switch_api(stack, t, args.api_processes)
                        current = t.name
                        await warm_up(bench, t)
                    await profile(bench, t)
        finally:
            if bench is not None and bench.pg is not None:
                await bench.pg.close()
            await stack.stop_all()
            await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000, help="open loop: orders per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--open-connections", type=int, default=128)
    parser.add_argument("--connections", type=int, default=64, help="closed loop concurrency")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=20, help="users on orderUpdates")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument(
        "--assets", type=int, default=1,
        help="assets traded (BNCH first), spread over the shards; orders go round-robin",
    )  # fmt: skip
    parser.add_argument(
        "--api-processes", type=int, default=1, help="API processes on the port (SO_REUSEPORT)"
    )
    parser.add_argument("--targets", default="graphql,bare")
    parser.add_argument("--modes", default="open,closed")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--pgbench", action="store_true", help="measure PostgreSQL's ceiling here first"
    )
    parser.add_argument("--show-profile", type=Path, help="print a saved profile's top list")
    configure_logging("WARNING")
    parsed = parser.parse_args()
    if parsed.show_profile:
        top_profile(parsed.show_profile, 25)
    else:
        uvloop.run(main(parsed))
