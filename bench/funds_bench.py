"""Deposit + withdraw throughput: through GraphQL over HTTP, through the funds service, and
through the bare ledger. Prints operations per second and p50/p99 latency per path.

    .venv/bin/python bench/funds_bench.py [--ops 2000] [--concurrency 16]

Uses DATABASE_URL / REDIS_URL when set (else the embedded servers under var/bench), in a
scratch database that is dropped afterwards. The API runs in this process (one event loop for
server and client), so the GraphQL figures are a lower bound for a dedicated API node.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from bench.scratch import scratch_settings  # noqa: E402
from bourse.logs import configure_logging  # noqa: E402
from bourse.process import ApiServer  # noqa: E402
from bourse.settings import Settings  # noqa: E402
from models.ledger import AccountKind, Leg  # noqa: E402
from models.services import Services, open_services  # noqa: E402
from models.users import KycStatus, User  # noqa: E402
from tests.support.server import free_port  # noqa: E402

DEPOSIT = """mutation($i: DepositInput!) { deposit(input: $i) {
  transaction { id status } errors { code } } }"""
WITHDRAW = """mutation($i: WithdrawInput!) { withdraw(input: $i) {
  transaction { id status } errors { code } } }"""


def report(name: str, latencies: list[float], wall: float) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:<34} {len(ordered):>6} ops  {len(ordered) / wall:>9.0f} ops/s  "
        f"p50 {statistics.median(ordered) * 1000:>7.2f} ms  p99 {p99 * 1000:>7.2f} ms"
    )


async def run(
    name: str, ops: int, concurrency: int, op: Callable[[int, int], Awaitable[None]]
) -> None:
    """`op(worker, i)` is one operation; `concurrency` workers share `ops` operations."""
    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker(w: int) -> None:
        for i in counter:
            start = time.perf_counter()
            await op(w, i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    report(name, latencies, time.perf_counter() - start)


def bench_kyc() -> dict[str, object]:
    """A well-formed identity for the sandbox KYC provider (a fresh SSN each: no duplicates)."""
    ssn = f"{random.randint(1, 665):03d}-{random.randint(1, 99):02d}-{random.randint(1, 9999):04d}"
    return {"legalFirstName": "Bench", "legalLastName": "User", "dateOfBirth": "1980-01-01",
            "address": {"line1": "1 Bench St", "city": "Springfield", "postalCode": "62701",
                        "country": "US"},
            "taxId": ssn, "citizenship": "US"}  # fmt: skip


async def make_users(services: Services, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with services.sessionmaker.begin() as s:
        for u in ids:
            s.add(User(id=u, username=f"b{u.hex[:12]}", email=f"b{u.hex[:12]}@example.com",
                       password_hash="!", kyc_status=KycStatus.VERIFIED))  # fmt: skip
    return ids


async def bench_ledger(services: Services, ops: int, concurrency: int) -> None:
    users = await make_users(services, concurrency)
    ledger = services.ledger
    async with services.sessionmaker.begin() as s:
        bank = await ledger.account_id(s, None, AccountKind.BANK, "USD")
        cash = [await ledger.account_id(s, u, AccountKind.CASH, "USD") for u in users]
    one = Decimal("1.00")

    async def op(w: int, i: int) -> None:
        async with services.sessionmaker.begin() as s:  # deposit: bank → cash
            await ledger.post(s, "DEPOSIT", [Leg(cash[w], "USD", one), Leg(bank, "USD", -one)])
        async with services.sessionmaker.begin() as s:  # withdraw: hold, then consume
            hold = await ledger.place_hold(s, cash[w], one, "WITHDRAWAL", user_id=users[w])
            await ledger.post(
                s, "WITHDRAWAL", [Leg(cash[w], "USD", -one), Leg(bank, "USD", one)],
                consume_holds=[hold],
            )  # fmt: skip

    await run("ledger: deposit+withdraw", ops, concurrency, op)


async def bench_service(services: Services, ops: int, concurrency: int) -> None:
    users = await make_users(services, concurrency)
    funds = services.funds

    async def op(w: int, i: int) -> None:
        await funds.deposit(users[w], "1.00", "USD", "sandbox:bank", uuid.uuid4().hex)
        await funds.withdraw(users[w], "1.00", "USD", "sandbox:bank", uuid.uuid4().hex)

    await run("service: deposit+withdraw", ops, concurrency, op)


async def bench_graphql(settings: Settings, ops: int, concurrency: int) -> None:
    from bff.app import create_app

    assert settings.database_url
    assert settings.redis_url
    port = free_port()
    app = create_app(settings, settings.database_url, settings.redis_url)
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
        ) as http:
            tokens = []
            for w in range(concurrency):
                email = f"bench{w}.{uuid.uuid4().hex[:8]}@example.com"
                creds = {"email": email, "password": "Bench-Pass-42"}
                await http.post("/graphql", json={
                    "query": "mutation($i: RegisterInput!){register(input:$i){errors{code}}}",
                    "variables": {"i": {**creds, "username": f"bench{uuid.uuid4().hex[:10]}"}},
                })  # fmt: skip
                r = await http.post("/graphql", json={
                    "query": "mutation($i: LoginInput!){login(input:$i){token}}",
                    "variables": {"i": creds},
                })  # fmt: skip
                token = r.json()["data"]["login"]["token"]
                tokens.append(token)
                await http.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "query": "mutation($i: SubmitKycInput!){submitKyc(input:$i){errors{code}}}",
                        "variables": {"i": bench_kyc()},
                    },
                )  # fmt: skip: the sandbox verifies it, so withdrawals pass the KYC gate

            async def call(w: int, query: str, method: str) -> None:
                field = "paymentMethod" if query is DEPOSIT else "withdrawalMethod"
                r = await http.post(
                    "/graphql",
                    json={"query": query, "variables": {"i": {
                        "amount": "1.00", "currency": "USD", field: method,
                        "idempotencyKey": uuid.uuid4().hex,
                    }}},
                    headers={"Authorization": f"Bearer {tokens[w]}"},
                )  # fmt: skip
                body = r.json()
                payload = next(iter(body["data"].values()))
                assert not payload["errors"], body

            async def op(w: int, i: int) -> None:
                await call(w, DEPOSIT, "sandbox:bank")
                await call(w, WITHDRAW, "sandbox:bank")

            await run("graphql: deposit+withdraw", ops, concurrency, op)
    finally:
        server.should_exit = True
        await task


async def main(args: argparse.Namespace) -> None:
    async with scratch_settings(
        funds_daily_deposit_limit=Decimal(10) ** 9, funds_daily_withdrawal_limit=Decimal(10) ** 9
    ) as settings:
        url, redis_url = settings.database_url, settings.redis_url
        assert url
        assert redis_url
        print(f"{args.ops} deposit+withdraw pairs per path, concurrency {args.concurrency}")
        async with open_services(settings, url, redis_url, pool_size=20) as services:
            await bench_ledger(services, args.ops, args.concurrency)
            await bench_service(services, args.ops, args.concurrency)
        await bench_graphql(settings, args.ops, args.concurrency)
        async with (
            open_services(settings, url, redis_url, pool_size=1) as services,
            services.sessionmaker() as s,
        ):
            differences = await services.ledger.check(s)
        print(f"ledger check afterwards: {len(differences)} difference(s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000, help="deposit+withdraw pairs per path")
    parser.add_argument("--concurrency", type=int, default=16)
    configure_logging("WARNING")  # one access line per request would dominate the figures
    asyncio.run(main(parser.parse_args()))
