"""A private Redis Cluster of 3 masters and 3 replicas on free loopback ports, to break on purpose.

    cluster = RedisClusterProcesses(tmp_path)
    await cluster.start()          # 6 redis-server processes, `redis-cli --cluster create`
    cluster.url                    # "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,..." (seeds)
    await cluster.masters()        # [(host, port), ...] of the current masters, slot order
    await cluster.kill_master(i)   # SIGKILL master i; returns once its replica is promoted
    await cluster.wait_ok()        # every node reports cluster_state:ok
    await cluster.stop()           # SIGKILL everything (the data directory is the caller's)

Every node runs ``--cluster-enabled yes --appendonly yes`` with ``cluster-node-timeout``
short (``node_timeout_ms``, 1 s by default) so a killed master's replica is promoted in a few
seconds. The processes are the machine's ``redis-server`` (``bourse.embedded.redis``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from redis.asyncio import Redis

from bourse.embedded.redis import find_redis_server
from tests.support.private_servers import wait_redis
from tests.support.server import free_port

HOST = "127.0.0.1"


class RedisClusterProcesses:
    def __init__(
        self, directory: Path, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000
    ) -> None:
        self.dir = directory
        self.count = masters * (1 + replicas)
        self.n_masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a seed (a dead one is skipped)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{p}" for p in self.ports)

    def _spawn(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(find_redis_server()),
            "--bind", HOST, "--port", str(port), "--dir", str(node_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # Replicas sync at once (the default waits 5 s for more replicas to share one
            # transfer): a replica that never synced does not take over a dead master.
            "--repl-diskless-sync-delay", "0",
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--protected-mode", "yes", "--daemonize", "no",
        ]  # fmt: skip
        with (node_dir / "redis.log").open("ab") as log:
            self.procs[port] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def start(self) -> None:
        """Start the nodes, create the cluster, wait for ``cluster_state:ok`` everywhere."""
        self.dir.mkdir(parents=True, exist_ok=True)
        while len(self.ports) < self.count:
            port = free_port()
            # The cluster bus listens on port + 10000: both must be free.
            if port not in self.ports and port + 10000 < 65536 and _bindable(port + 10000):
                self.ports.append(port)
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            try:
                await _wait_ping(port)
            except RuntimeError as exc:
                log = (self.dir / str(port) / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"{exc}: {log[-1500:]}") from exc
        cli = shutil.which("redis-cli") or str(find_redis_server().with_name("redis-cli"))
        create = await asyncio.create_subprocess_exec(
            cli, "--cluster", "create", *(f"{HOST}:{p}" for p in self.ports),
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await create.communicate()
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.decode()[-2000:]}")
        await self.wait_ok()

    async def _alive_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    async def wait_ok(self, timeout: float = 60) -> None:
        """Until every live node says ``cluster_state:ok`` and sees ``masters`` masters,
        each covering slots (and none of them failed), and every live replica's link to its
        master is up (so it can take over)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ok = True
            for port in await self._alive_ports():
                try:
                    info = await _cluster_info(port)
                    masters = await _masters_of(port)
                except Exception:
                    ok = False
                    break
                if "cluster_state:ok" not in info or len(masters) != self.n_masters:
                    ok = False
                    break
                if not await _replica_synced(port):
                    ok = False
                    break
            if ok:
                return
            if loop.time() > deadline:
                raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")
            await asyncio.sleep(0.1)

    async def masters(self) -> list[tuple[str, int]]:
        """The current masters, ordered by their first slot (so index 0 owns slot 0)."""
        for port in await self._alive_ports():
            with contextlib.suppress(Exception):
                return [(HOST, p) for _, p in sorted(await _masters_of(port))]
        raise RuntimeError("no live node of the cluster answers")

    async def master_of_slot(self, slot: int) -> tuple[str, int]:
        for port in await self._alive_ports():
            with contextlib.suppress(Exception):
                for first_last, p in await _masters_ranges(port):
                    if any(lo <= slot <= hi for lo, hi in first_last):
                        return (HOST, p)
        raise RuntimeError(f"no master owns slot {slot}")

    async def kill_master(self, index: int, timeout: float = 60) -> tuple[str, int]:
        """SIGKILL master ``index`` (of ``masters()``); return once a replica has taken over
        its slots and the cluster is ok again. Returns the killed node's address. The master
        needs a live replica (a promoted one has none: its old master is dead)."""
        host, port = (await self.masters())[index]
        self.kill_node(port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with contextlib.suppress(Exception):
                current = await self.masters()
                if (host, port) not in current and len(current) == self.n_masters:
                    break
            if loop.time() > deadline:
                raise TimeoutError(f"no replica took over from {host}:{port}")
            await asyncio.sleep(0.1)
        await self.wait_ok(timeout)
        return host, port

    def kill_node(self, port: int) -> None:
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    async def stop(self) -> None:
        for port in list(self.procs):
            self.kill_node(port)
        self.procs.clear()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


async def _wait_ping(port: int) -> None:
    await wait_redis(f"redis://{HOST}:{port}", f"redis-server did not start on {port}")


async def _replica_synced(port: int) -> bool:
    """A master, or a replica whose link to its master is up (INFO replication)."""
    client = Redis(host=HOST, port=port, socket_timeout=1)
    try:
        info = await client.info("replication")
    finally:
        await client.aclose()
    return bool(info.get("role") != "slave" or info.get("master_link_status") == "up")


async def _cluster_info(port: int) -> str:
    client = Redis(host=HOST, port=port, socket_timeout=1, decode_responses=True)
    try:
        return str(await client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()


async def _masters_ranges(port: int) -> list[tuple[list[tuple[int, int]], int]]:
    """(slot ranges, port) of every master that serves slots, as ``CLUSTER NODES`` of the
    node on ``port`` tells it (failed masters left out)."""
    client = Redis(host=HOST, port=port, socket_timeout=1, decode_responses=True)
    try:
        text = await client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()
    lines = text.values() if isinstance(text, dict) else str(text).splitlines()
    out: list[tuple[list[tuple[int, int]], int]] = []
    for line in lines:
        parts = str(line).split()
        if len(parts) < 8:
            continue
        flags = parts[2].split(",")
        if "master" not in flags or "fail" in flags or "fail?" in flags:
            continue
        ranges: list[tuple[int, int]] = []
        for spec in parts[8:]:
            if spec.startswith("["):
                continue  # a slot being migrated
            lo, _, hi = spec.partition("-")
            ranges.append((int(lo), int(hi or lo)))
        if ranges:
            out.append((ranges, int(parts[1].split("@")[0].rsplit(":", 1)[1])))
    return out


async def _masters_of(port: int) -> list[tuple[int, int]]:
    """(first slot, port) of every slot-serving master."""
    return [(min(lo for lo, _ in r), p) for r, p in await _masters_ranges(port)]
