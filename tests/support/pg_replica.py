"""A PostgreSQL primary and a real streaming replica of it, private to a test module.

The primary is the embedded launcher's (``PrivatePostgres``: ``wal_level = replica`` and a
``replication`` line in pg_hba.conf already, for backups). The replica is
``pg_basebackup -R`` of it (``standby.signal`` and ``primary_conninfo`` written by the tool),
given its own port and socket directory in ``postgresql.auto.conf`` (read after the copied
``bourse.conf``), started with ``pg_ctl`` and waited for until the primary reports it
streaming. As root both run as the unprivileged account (PostgreSQL refuses root).

``pause_replay()`` / ``resume_replay()`` (``pg_wal_replay_pause()``: the replica keeps
receiving WAL but applies none of it: lag on demand), ``stop()`` (immediate: as if it died) and
``start()`` again on the same port and data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg
from sqlalchemy.engine import make_url

from bourse.embedded.lifecycle import _clean_env
from bourse.embedded.postgres import EmbeddedPostgres, _postgres_account
from tests.support.private_servers import PrivatePostgres
from tests.support.server import free_port


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class StreamingReplica:
    def __init__(self, primary: EmbeddedPostgres, primary_url: str, directory: Path) -> None:
        self.primary = primary
        self.primary_url = primary_url
        self.dir = directory
        self.data_dir = directory / "data"
        self.socket_dir = directory / "run"
        self.log_path = directory / "postgres.log"
        self.port = free_port()
        self.url = make_url(primary_url).set(port=self.port).render_as_string(hide_password=False)
        self.account = _postgres_account(primary.data_dir)

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        a = self.account
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=self.dir,
            timeout=timeout,
            check=False,
            user=a.uid if a else None,
            group=a.gid if a else None,
            extra_groups=() if a else None,
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"{what} failed: {result.stderr or result.stdout}\n{log[-3000:]}")

    def create(self) -> None:
        """The base backup, taken from the running primary (streamed WAL included)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        if self.account is not None:
            for path in (self.dir, self.socket_dir):
                os.chown(path, self.account.uid, self.account.gid)
        bin_dir = self.primary.bin_dir
        self._check(
            self._run(
                [
                    str(bin_dir / "pg_basebackup"),
                    *("-d", _asyncpg_dsn(self.primary_url), "-D", str(self.data_dir)),
                    *("-R", "-X", "stream", "-c", "fast", "--no-password"),
                ]
            ),
            "pg_basebackup",
        )
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                "\n# tests/support/pg_replica.py: the replica's own address\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "archive_mode = off\n"
                "hot_standby = on\n"
                # Replay paused on purpose must not be cancelled into a conflict error.
                "max_standby_streaming_delay = -1\n"
            )

    def start(self) -> None:
        bin_dir = self.primary.bin_dir
        self._check(
            self._run(
                [
                    str(bin_dir / "pg_ctl"),
                    *("start", "-w", "-t", "60", "-D", str(self.data_dir)),
                    *("-l", str(self.log_path)),
                ]
            ),
            "pg_ctl start (replica)",
        )

    def stop(self, mode: str = "immediate") -> None:
        bin_dir = self.primary.bin_dir
        self._run([str(bin_dir / "pg_ctl"), "stop", "-m", mode, "-w", "-D", str(self.data_dir)])

    async def execute(self, sql: str) -> object:
        conn = await asyncpg.connect(_asyncpg_dsn(self.url), timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def wait_streaming(self, timeout: float = 60) -> None:
        """Until the primary lists this replica as streaming and it has replayed everything the
        primary had flushed when we started waiting."""
        primary = await asyncpg.connect(_asyncpg_dsn(self.primary_url), timeout=5)
        try:
            target = await primary.fetchval("SELECT pg_current_wal_flush_lsn()")
            deadline = time.monotonic() + timeout
            while True:
                streaming = await primary.fetchval(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                    "AND replay_lsn >= $1",
                    target,
                )
                if streaming:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica on {self.port} is not streaming")
                await asyncio.sleep(0.1)
        finally:
            await primary.close()

    async def pause_replay(self) -> None:
        await self.execute("SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self.execute("SELECT pg_wal_replay_resume()")


class ReplicatedPostgres:
    """A private primary and one streaming replica, in a temporary directory."""

    def __init__(self) -> None:
        # The unprivileged account PostgreSQL runs as (when we are root) must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="bourse-replica-"))
        os.chmod(self.dir, 0o755)
        self.primary = PrivatePostgres(self.dir / "primary")
        self.url = ""
        self.replica: StreamingReplica | None = None

    async def __aenter__(self) -> Self:
        try:
            self.url = await asyncio.to_thread(self.primary.start)
            replica = StreamingReplica(self.primary.server, self.url, self.dir / "replica")
            self.replica = replica
            await asyncio.to_thread(replica.create)
            await asyncio.to_thread(replica.start)
            await replica.wait_streaming()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.replica is not None:
            await asyncio.to_thread(self.replica.stop)
        await asyncio.to_thread(self.primary.stop)
        shutil.rmtree(self.dir, ignore_errors=True)
