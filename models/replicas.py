"""Read replicas (issue 21 item 3): where the reads that may lag go, and how far they may lag.

``DATABASE_REPLICA_URL`` names one or more PostgreSQL streaming replicas (comma-separated).
``Replicas.sessionmaker`` is the one seam for the reads that tolerate a few seconds of lag
(market history, news, help search, document lists, performance analytics): each session it
opens is bound to a healthy replica, round robin, else to the primary. Everything a user must
see as they wrote it (their orders, funds, portfolio, a document they just asked for) keeps
using the primary's sessionmaker: read-your-writes, with no session stickiness to get wrong.
With no replica configured the seam *is* the primary's sessionmaker: everything as before.

Lag is measured, per process, by one background task every ``BOURSE_REPLICA_CHECK_SECONDS``,
on the WAL position rather than on timestamps. ``now() - pg_last_xact_replay_timestamp()`` on
the replica is the age of the last transaction replayed, which grows on a replica that is
perfectly caught up when the primary is idle (nothing to replay); it would send every read to
the primary at night. Instead each check first samples the primary's
``pg_current_wal_flush_lsn()`` (only flushed WAL is streamed) and keeps the samples of the
last minute; then it reads the replica's ``pg_last_wal_replay_lsn()``. A replica whose replay
position has reached the sample taken at time ``t`` holds everything the primary had
committed at ``t``, so its lag is at most ``now - t`` for the newest such sample: zero-ish on an
idle primary, growing in real time when replay stops (``pg_wal_replay_pause()``, a long
conflict, a broken stream), and an upper bound that is coarse by one check interval under
steady writes. A replica behind every sample kept is treated as lagging without bound.

Bounded: a replica lagging past ``BOURSE_REPLICA_MAX_LAG_SECONDS``, not answering, or no longer
in recovery (promoted: it is not a replica of this primary any more) gets no reads; it gets
them again once a check finds it caught up. A session opened on a replica that has died since
the last check finds out when it connects (pool pre-ping, then a refused or timed-out
connection): it marks the replica down and carries on, on the primary, so such a read still
answers. A replica dying in the middle of a statement fails that one read.

Each replica exports ``bourse_replica_lag_seconds`` and ``bourse_replica_available``
(``bourse.metrics``); ``bourse status`` prints each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bourse import metrics
from models.db import create_engine

logger = logging.getLogger(__name__)

# Primary WAL samples older than this are dropped; a replica behind all of them counts as
# lagging without bound (the bound itself is far smaller).
SAMPLE_HISTORY_S = 60.0
_ROUTER_KEY = "bourse.replicas"


def replica_urls(raw: str | None) -> list[str]:
    """``DATABASE_REPLICA_URL`` split on commas (a multi-host URL uses ``?host=`` parameters,
    which carry none)."""
    return [u.strip() for u in (raw or "").split(",") if u.strip()]


def replica_name(url: str) -> str:
    """A label for logs, metrics and `bourse status`: host:port/database, never a password."""
    u = make_url(url)
    hosts = u.query.get("host")
    where = ",".join(hosts) if isinstance(hosts, tuple) else hosts or f"{u.host}:{u.port or 5432}"
    return f"{where}/{u.database}"


def lsn_int(lsn: str) -> int:
    """A pg_lsn's text form (``16/B374D848``) as a byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class ReplicaState:
    name: str
    engine: AsyncEngine
    lag_seconds: float | None = None  # None: unknown (not checked yet, unreachable, far behind)
    available: bool = False  # gets reads (reachable, in recovery, within the bound)
    detail: str = "not checked yet"
    checked_at: float | None = None  # monotonic

    def set(self, available: bool, lag: float | None, detail: str) -> None:
        self.available, self.lag_seconds, self.detail = available, lag, detail
        metrics.replica_available.labels(self.name).set(1 if available else 0)
        if lag is not None:
            metrics.replica_lag_seconds.labels(self.name).set(lag)


class ReadSession(AsyncSession):
    """A session for lag-tolerant reads: on a replica that turns out unreachable when it
    connects, it moves itself to the primary (see the module docstring)."""

    async def __aenter__(self) -> Self:
        router: Replicas | None = self.info.get(_ROUTER_KEY)
        replica: ReplicaState | None = self.info.get("replica")
        if router is None or replica is None:
            return self
        try:
            await self.connection()
        except (OSError, SQLAlchemyError, TimeoutError) as exc:
            router.mark_down(replica, f"unreachable on connect: {type(exc).__name__}")
            await self.close()
            self.bind = router.primary
            self.sync_session.bind = router.primary.sync_engine
            self.info["replica"] = None
            metrics.db_reads.labels("primary").inc()
            return self
        metrics.db_reads.labels("replica").inc()
        return self


class _RoutedSessionmaker(async_sessionmaker[AsyncSession]):
    """An ``async_sessionmaker`` whose sessions bind, each when created, to the replica the
    router chooses (the primary when none is fit), so the services keep their one type."""

    def __init__(self, router: Replicas) -> None:
        super().__init__(router.primary, class_=ReadSession, expire_on_commit=False)
        self._router = router

    def __call__(self, **local_kw: Any) -> AsyncSession:
        replica = self._router.choose()
        if replica is not None:
            local_kw.setdefault("bind", replica.engine)
        else:
            metrics.db_reads.labels("primary").inc()
        session = super().__call__(**local_kw)
        session.info[_ROUTER_KEY] = self._router
        session.info["replica"] = replica
        return session


class Replicas:
    """The replicas of one process: their engines, their measured lag, the routing seam."""

    def __init__(
        self,
        primary: AsyncEngine,
        primary_sessionmaker: async_sessionmaker[AsyncSession],
        urls: Sequence[str],
        *,
        max_lag_seconds: float,
        check_seconds: float,
        pool_size: int = 10,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self._clock = clock
        self.replicas = [
            ReplicaState(replica_name(u), create_engine(u, pool_size=pool_size, timeout=timeout))
            for u in urls
        ]
        self._samples: deque[tuple[float, int]] = deque()
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] = (
            _RoutedSessionmaker(self) if self.replicas else primary_sessionmaker
        )

    # ---- routing ---------------------------------------------------------------------------

    def choose(self) -> ReplicaState | None:
        """The next available replica, round robin; None: read from the primary."""
        fit = [r for r in self.replicas if r.available]
        return fit[next(self._turn) % len(fit)] if fit else None

    def mark_down(self, replica: ReplicaState, detail: str) -> None:
        if replica.available:
            logger.warning("replica %s: %s; its reads go to the primary", replica.name, detail)
        replica.set(False, None, detail)

    # ---- measuring -------------------------------------------------------------------------

    async def check(self) -> None:
        """One measurement of every replica (see the module docstring)."""
        now = self._clock()
        try:
            async with self.primary.connect() as c:
                raw = await c.scalar(
                    text(
                        "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                        "ELSE pg_current_wal_flush_lsn() END::text"
                    )
                )
        except (OSError, SQLAlchemyError) as exc:
            # No primary to compare with: keep the last verdicts (a replica that was fit stays
            # fit for reads that may lag; the primary is not there to take them anyway).
            logger.warning("replica check: primary unreachable (%s)", type(exc).__name__)
            return
        self._samples.append((now, lsn_int(str(raw))))
        while self._samples and now - self._samples[0][0] > SAMPLE_HISTORY_S:
            self._samples.popleft()
        await asyncio.gather(*(self._check_one(r) for r in self.replicas))

    async def _check_one(self, replica: ReplicaState) -> None:
        try:
            async with replica.engine.connect() as c:
                row = (
                    await c.execute(
                        text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
                    )
                ).one()
        except (OSError, SQLAlchemyError) as exc:
            self.mark_down(replica, f"unreachable: {type(exc).__name__}")
            return
        finally:
            replica.checked_at = self._clock()
        in_recovery, replayed = bool(row[0]), row[1]
        if not in_recovery or replayed is None:
            self.mark_down(replica, "not in recovery (promoted?): not a replica of the primary")
            return
        position = lsn_int(str(replayed))
        reached = [at for at, lsn in self._samples if lsn <= position]
        if not reached:
            self.mark_down(replica, "behind every primary position of the last minute")
            return
        lag = max(0.0, self._clock() - max(reached))
        fit = lag <= self.max_lag_seconds
        if fit and not replica.available:
            logger.info("replica %s: lag %.1fs, taking reads", replica.name, lag)
        elif not fit and replica.available:
            logger.warning(
                "replica %s: lag %.1fs past %.1fs; its reads go to the primary",
                replica.name,
                lag,
                self.max_lag_seconds,
            )
        replica.set(fit, lag, f"lag {lag:.1f}s" + ("" if fit else " (past the bound)"))

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the monitor never dies; the next check tries again
                logger.exception("replica check failed")
            await asyncio.sleep(self.check_seconds)

    def start(self) -> None:
        if self.replicas and self._task is None:
            self._task = asyncio.create_task(self._run(), name="replica-lag")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for r in self.replicas:
            await r.engine.dispose()
