"""The disaster-recovery drill (issue 20): the platform on its embedded PostgreSQL with WAL
archiving; a burst of orders; `bourse backup`; more trading; then the PostgreSQL data directory
and Redis are destroyed. `bourse restore` rebuilds the cluster from the base backup and the
archived WAL, the platform starts on it with an empty Redis, and the test prints the recovery
point (seconds of committed work lost) and the recovery time (restore start to `/readyz` 200).
The ledger check is clean afterwards, and an order resting before the disaster is still
cancellable, its hold released to the cent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bourse.embedded import EmbeddedPostgres
from bourse.migrate import upgrade_async
from bourse.settings import Settings
from models.orders import Order
from models.services import open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    ACCOUNT,
    CANCEL,
    PLACE,
    get_order,
    grant_shares,
    list_asset,
    trader,
    wait_order,
)
from tests.orders.test_faults import _trade
from tests.support.faults import quiescent as _quiescent
from tests.support.stack import Stack

ARCHIVE_TIMEOUT = 3  # seconds: the drill's bound on lost work (production default: 60)
RPO_BAR = ARCHIVE_TIMEOUT + 5
RTO_BAR = 120


@pytest.fixture
def root() -> Iterator[Path]:
    """World-traversable: as root, PostgreSQL runs as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="bourse-dr-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        with contextlib.suppress(Exception):
            EmbeddedPostgres(path).stop(force=True)
        shutil.rmtree(path, ignore_errors=True)


async def bourse(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"BOURSE_VAR_DIR": str(root), "BOURSE_PG_ARCHIVE_TIMEOUT_SECONDS": str(ARCHIVE_TIMEOUT),
            "REDIS_URL": os.environ.get("REDIS_URL", "")}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


def crash(pg: EmbeddedPostgres) -> None:
    """SIGKILL the postmaster: a machine losing power, as far as PostgreSQL can tell."""
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("the postmaster survived SIGKILL")


async def newest_commit(settings: Settings) -> datetime:
    assert settings.database_url
    assert settings.redis_url
    async with (
        open_services(settings, settings.database_url, settings.redis_url, pool_size=1) as s,
        s.sessionmaker() as db,
    ):
        found = await db.scalar(select(func.max(Order.created_at)))
    assert isinstance(found, datetime)
    return found


async def test_backup_destroy_restore_drill(settings: Settings, root: Path) -> None:
    pg = EmbeddedPostgres(root, archive_timeout=ARCHIVE_TIMEOUT)
    url = await asyncio.to_thread(pg.start)
    await upgrade_async(url)
    here = settings.model_copy(update={"database_url": url, "var_dir": root})
    sym = symbol("DR")
    stack = Stack(here, shards=1)
    tokens: list[str] = []
    users: list[uuid.UUID] = []
    try:
        await stack.start_all()
        s = stack.settings
        assert s.redis_url
        async with open_services(s, url, s.redis_url, pool_size=2) as services:
            await list_asset(services, sym, "100.00", liquidity=True)
            async with stack.client() as api:
                for _ in range(4):
                    token, user_id = await trader(api, "50000")
                    await grant_shares(services, user_id, sym, "500")
                    tokens.append(token)
                    users.append(user_id)

                async def burst(seconds: float) -> list[str]:
                    stop, accepted = asyncio.Event(), list[str]()
                    tasks = [asyncio.create_task(_trade(api, t, sym, stop, accepted, n))
                             for n, t in enumerate(tokens)]  # fmt: skip
                    await asyncio.sleep(seconds)
                    stop.set()
                    await asyncio.gather(*tasks)
                    return accepted

                assert len(await burst(3)) > 10
                await _quiescent(services, users)
                out = await bourse(root, "backup")
                assert "base backup" in out
                # After the backup: more trading, and one order left resting, with its hold.
                after_backup = await burst(3)
                assert len(after_backup) > 10
                resting_order = {
                    "assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT",
                    "quantity": "2", "price": "95.00", "timeInForce": "GTC",
                }  # fmt: skip
                quiet, _ = await trader(api, "1000")  # trades nothing else: its hold is exact
                placed = await api.gql(PLACE, {"input": resting_order}, quiet)
                resting = placed["data"]["placeOrder"]["order"]
                await _quiescent(services, users)
                held = (await api.gql(ACCOUNT, token=quiet))["data"]["account"]["cash"]
                assert resting is not None, placed
                # Trading until the moment of the disaster: the tail is what the RPO measures.
                assert len(await burst(1.5)) > 0
                # The disaster, mid-flight: PostgreSQL dies (SIGKILL, no shutdown checkpoint,
                # nothing more archived) and its disk is lost; Redis's data is lost too (the
                # restored platform gets a key prefix of its own, empty).
                crashed_at = datetime.now(UTC)
                crash(pg)
    finally:
        await stack.stop_all()
    shutil.rmtree(pg.data_dir)
    started = time.monotonic()
    out = await bourse(root, "restore")
    assert "WAL replayed to the end of the archive" in out, out
    url = await asyncio.to_thread(pg.start)
    restored_stack = Stack(here.model_copy(update={"database_url": url}), shards=1)  # new prefix
    try:
        await restored_stack.start_all()
        rto = time.monotonic() - started
        recovered = await newest_commit(restored_stack.settings)
        rpo = max(0.0, (crashed_at - recovered).total_seconds())
        print(f"\nDR drill: RPO {rpo:.1f}s (bar {RPO_BAR}s), RTO {rto:.1f}s (bar {RTO_BAR}s)")
        assert rpo <= RPO_BAR
        assert rto <= RTO_BAR
        s = restored_stack.settings
        assert s.redis_url
        async with open_services(s, url, s.redis_url, pool_size=2) as services:
            async with services.sessionmaker() as db:
                assert await services.ledger.check(db) == []
            async with restored_stack.client() as api:
                # The order resting before the disaster is there, its hold intact, and the
                # rebuilt engine knows it: cancelling it ends it and frees exactly its hold.
                order = await get_order(api, quiet, resting["id"])
                assert order is not None
                assert order["status"] == "PENDING"
                assert (await api.gql(ACCOUNT, token=quiet))["data"]["account"]["cash"] == held
                assert [c["held"] for c in held if c["currency"] == "USD"] == ["190.00"]
                cancelled = await api.gql(CANCEL, {"id": resting["id"]}, quiet)
                assert cancelled["data"]["cancelOrder"]["errors"] == [], cancelled
                await wait_order(api, quiet, resting["id"], {"CANCELLED"})
                cash = (await api.gql(ACCOUNT, token=quiet))["data"]["account"]["cash"]
                assert [(c["held"], c["available"]) for c in cash if c["currency"] == "USD"] == [
                    ("0.00", "1000.00")
                ]
    finally:
        await restored_stack.stop_all()
        await asyncio.to_thread(pg.stop, force=True)
