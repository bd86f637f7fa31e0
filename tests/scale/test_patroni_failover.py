"""PostgreSQL failover under load (issue 21 item 4): Patroni and etcd (`tests/support/patroni.py`,
the committed `ops/patroni/patroni.yml`), two nodes with synchronous replication, the whole
platform (`tests/support/stack.py`: API, shards, settlement, liquidity) on the multi-host
`DATABASE_URL` with `target_session_attrs=read-write`.

A burst of orders and deposits; mid-burst the primary's Patroni and PostgreSQL are SIGKILLed
(the machine dies, nothing hands over). The synchronous standby is promoted, the platform's
new connections land on it, and afterwards: orders are accepted again, every order and every
deposit the API acknowledged is in PostgreSQL (synchronous_mode: an acknowledged commit was
flushed on the standby before the client heard of it), every accepted order final, no fill
applied twice, the ledger check clean. Every node is also a read replica
(`DATABASE_REPLICA_URL`): the lag-tolerant reads follow whichever node is a standby, and the
killed node, restarted, rejoins (rewound) as the synchronous standby and takes them again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select, text

from bourse.migrate import upgrade_async
from bourse.settings import Settings
from models.funds import FundTransaction
from models.services import Services, open_services
from tests.funds.helpers import DEPOSIT
from tests.orders.conftest import symbol
from tests.orders.helpers import cancel_open_orders, list_asset, wait_book
from tests.resilience.conftest import traders
from tests.support.faults import Burst, assert_consistent, quiescent, run_burst, wait_ready
from tests.support.patroni import PatroniCluster, available
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import running_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
    pytest.mark.timeout(900),
]

BEFORE_S = 4.0  # burst before the kill
PROMOTED_WITHIN_S = 45.0  # ttl 10 s in the test's Patroni timings, plus the loop
CARRY_ON_S = 60.0  # orders accepted again within this long of the promotion


@dataclass
class Deposits:
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0
    codes: dict[str, int] = field(default_factory=dict)


async def deposit_loop(api: Api, token: str, stop: asyncio.Event, out: Deposits) -> None:
    while not stop.is_set():
        variables = {
            "input": {"amount": "1.00", "currency": "USD", "paymentMethod": "sandbox:bank",
                      "idempotencyKey": uuid.uuid4().hex},
        }  # fmt: skip
        try:
            body = (await api.post(DEPOSIT, variables, token)).json()
        except Exception:  # no answer: not acknowledged, so nothing to find afterwards
            out.refused += 1
            await asyncio.sleep(0.1)
            continue
        payload = (body.get("data") or {}).get("deposit") or {}
        if payload.get("transaction") and not payload.get("errors"):
            out.acknowledged.append(payload["transaction"]["id"])
        else:
            out.refused += 1
            codes = [e["code"] for e in payload.get("errors") or []]
            top = body.get("errors") or []
            codes += [(e.get("extensions") or {}).get("code", "?") for e in top]
            for code in codes or ["?"]:
                out.codes[code] = out.codes.get(code, 0) + 1
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.02)


async def test_primary_killed_mid_burst_nothing_acknowledged_is_lost(settings: Settings) -> None:
    async with PatroniCluster() as cluster:
        url = cluster.database_url
        await upgrade_async(url)
        # Every node listed as a read replica too, as the runbook says: whichever is in
        # recovery takes the lag-tolerant reads, the primary (not in recovery) never does.
        own = settings.model_copy(
            update={
                "database_url": url,
                "database_replica_url": ",".join(cluster.node_url(n) for n in cluster.nodes),
                "replica_check_seconds": 0.5,
            }
        )
        async with running_stack(own) as stack:
            s = stack.settings
            assert s.redis_url
            async with (
                open_services(s, url, s.redis_url, pool_size=4) as services,
                stack.client() as api,
            ):
                # Synchronous replication is on (ops/patroni/patroni.yml: synchronous_mode), and
                # the standby is the synchronous one: an acknowledged commit is on both nodes.
                async with services.sessionmaker() as db:
                    names = await db.scalar(text("SHOW synchronous_standby_names"))
                members = (await cluster.cluster()).get("members", [])
                standby = [m["name"] for m in members if m["role"] == "sync_standby"]
                assert len(standby) == 1, members
                assert standby[0] in str(names), names
                by_name = {n.name: n for n in cluster.nodes}
                await eventually(
                    lambda: _reads_port(services),
                    lambda port: port == by_name[standby[0]].pg_port,
                    timeout=20,
                    what="lag-tolerant reads on the standby",
                )
                sym = symbol("PF")
                await list_asset(services, sym, "100.00", liquidity=True)
                await wait_book(services, sym)
                tokens, user_ids = await traders(api, services, sym)

                out, deposits = Burst(), Deposits()
                stop, tasks = await run_burst(api, tokens, sym, out)
                tasks += [
                    asyncio.create_task(deposit_loop(api, t, stop, deposits)) for t in tokens[:3]
                ]
                await asyncio.sleep(BEFORE_S)
                before = len(out.accepted)
                killed = await cluster.kill_primary()
                killed_at = time.monotonic()
                promoted = await cluster.wait_primary(PROMOTED_WITHIN_S, other_than=killed)
                promoted_s = time.monotonic() - killed_at
                members = (await cluster.cluster()).get("members", [])
                assert [m["name"] for m in members if m["role"] == "leader"] == [promoted.name]
                assert promoted.name == standby[0]  # only the synchronous standby is promoted
                at_promotion = len(out.accepted)
                await eventually(
                    lambda: _count(out),
                    lambda n: n >= at_promotion + 20,
                    timeout=CARRY_ON_S,
                    what="orders accepted again on the new primary",
                )
                stop.set()
                await asyncio.gather(*tasks)
                # The promoted node left the replicas (out of recovery), the dead one is down:
                # lag-tolerant reads answer from the new primary.
                await eventually(
                    lambda: _reads_port(services),
                    lambda port: port == promoted.pg_port,
                    timeout=20,
                    what="lag-tolerant reads on the new primary",
                )
                ready_s = await wait_ready(api, 60)
                print(
                    f"patroni failover: {before} orders before the kill, promoted in "
                    f"{promoted_s:.1f}s, {len(out.accepted)} accepted in all, "
                    f"{out.unavailable} SERVICE_UNAVAILABLE, {out.failed} unanswered, "
                    f"{len(deposits.acknowledged)} deposits acknowledged "
                    f"({deposits.refused} refused); /readyz 200 in {ready_s:.1f}s"
                )
                assert before > 20, f"too few orders before the kill to prove anything: {out}"
                assert len(deposits.acknowledged) > 10, deposits

                # Every acknowledged deposit is there (synchronous replication).
                async with services.sessionmaker() as db:
                    found = set(
                        (
                            await db.scalars(
                                select(FundTransaction.id).where(
                                    FundTransaction.id.in_(
                                        [uuid.UUID(i) for i in deposits.acknowledged]
                                    )
                                )
                            )
                        ).all()
                    )
                assert {str(i) for i in found} == set(deposits.acknowledged)

                await quiescent(services, user_ids, timeout=120)
                await cancel_open_orders(api, services, dict(zip(user_ids, tokens, strict=True)))
                await quiescent(services, user_ids, timeout=120)
                # Every acknowledged order present and final, fills once, the ledger clean.
                fills = await assert_consistent(services, user_ids, out.accepted, sym)
                assert len(fills) > 10, "too few fills to prove anything"

                # The dead machine comes back: rewound, it rejoins as the synchronous standby
                # and takes the lag-tolerant reads again.
                cluster.restart_node(killed)
                await cluster.wait_member(killed.name, {"sync_standby"}, timeout=180)
                await eventually(
                    lambda: _reads_port(services),
                    lambda port: port == killed.pg_port,
                    timeout=30,
                    what="lag-tolerant reads on the rejoined node",
                )


async def _count(out: Burst) -> int:
    return len(out.accepted)


async def _reads_port(services: Services) -> int:
    async with services.reads() as s:
        return int(await s.scalar(text("SELECT inet_server_port()")) or 0)
