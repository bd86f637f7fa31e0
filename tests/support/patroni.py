"""A Patroni cluster of a test's own: a single-node etcd and two Patroni nodes (PostgreSQL 15),
on free loopback ports with everything under a temporary directory (issue 21 item 4).

Each node's configuration is the committed ``ops/patroni/patroni.yml`` with only the
node's name, addresses, directories and faster timings replaced, so the test runs the file
production uses (synchronous replication included). etcd and Patroni are Debian's packages
(``etcd``, ``patroni`` on PATH). As root, Patroni (and so PostgreSQL) runs as the unprivileged
account the embedded PostgreSQL uses; etcd runs as us.

``database_url`` is the multi-host URL the platform uses: both nodes, ``target_session_attrs=
read-write``, so a new connection lands on whichever node is the primary now.
``kill_primary()`` SIGKILLs the leader's Patroni and its PostgreSQL (postmaster and every
backend): a machine dying, with no chance to hand over.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml  # type: ignore[import-untyped]

from bourse.embedded.lifecycle import UNPRIVILEGED_ACCOUNT, _clean_env
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "ops" / "patroni" / "patroni.yml"
BIN_DIR = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "bourse-test"  # superuser and replication, scram over loopback as in production


def available() -> str | None:
    """Why the cluster cannot run here (None: it can)."""
    for tool in ("etcd", "patroni"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install patroni etcd-server)"
    if not (BIN_DIR / "postgres").exists():
        return f"no PostgreSQL 15 server in {BIN_DIR}"
    return None


def _account() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    entry = pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    return entry.pw_uid, entry.pw_gid


@dataclass
class Node:
    name: str
    pg_port: int
    api_port: int
    dir: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError, PermissionError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None


def node_config(template: dict[str, Any], node: Node, etcd_port: int) -> dict[str, Any]:
    cfg = copy.deepcopy(template)
    cfg["name"] = node.name
    cfg["restapi"]["listen"] = f"127.0.0.1:{node.api_port}"
    cfg["restapi"]["connect_address"] = f"127.0.0.1:{node.api_port}"
    cfg["etcd3"] = {"hosts": f"127.0.0.1:{etcd_port}"}
    # Faster than production (30/10/10): a dead leader replaced within ~10 s, not ~30 s.
    cfg["bootstrap"]["dcs"].update({"ttl": 10, "loop_wait": 1, "retry_timeout": 4})
    params = cfg["bootstrap"]["dcs"]["postgresql"]["parameters"]
    params.update({"max_connections": 200, "wal_keep_size": "128MB"})
    cfg["bootstrap"]["initdb"] = [
        i for i in cfg["bootstrap"]["initdb"] if i != "data-checksums"
    ]  # seconds saved; wal_log_hints covers pg_rewind
    cfg["bootstrap"]["pg_hba"] = [
        line for line in cfg["bootstrap"]["pg_hba"] if "10.0.0.0" not in line
    ]
    pg = cfg["postgresql"]
    pg["listen"] = f"127.0.0.1:{node.pg_port}"
    pg["connect_address"] = f"127.0.0.1:{node.pg_port}"
    pg["data_dir"] = str(node.data_dir)
    pg["bin_dir"] = str(BIN_DIR)
    pg["pgpass"] = str(node.dir / "pgpass")
    pg["authentication"]["superuser"]["password"] = PASSWORD
    pg["authentication"]["replication"]["password"] = PASSWORD
    pg["parameters"] = {"unix_socket_directories": str(node.dir)}
    cfg["log"] = {"level": "INFO", "dir": str(node.dir), "file_num": 2}
    return cfg


class PatroniCluster:
    def __init__(self, nodes: int = 2) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bourse-patroni-"))
        os.chmod(self.dir, 0o755)
        self.account = _account()
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        template = yaml.safe_load(TEMPLATE.read_text())
        self.nodes: list[Node] = []
        for i in range(1, nodes + 1):
            d = self.dir / f"pg{i}"
            d.mkdir(mode=0o700)
            if self.account:
                os.chown(d, *self.account)
            self.nodes.append(Node(f"pg{i}", free_port(), free_port(), d, d / "patroni.yml"))
        for node in self.nodes:
            cfg = node_config(template, node, self.etcd_port)
            node.config.write_text(yaml.safe_dump(cfg))
            os.chmod(node.config, 0o644)
        hosts = "&".join(f"host=127.0.0.1:{n.pg_port}" for n in self.nodes)
        self.database_url = (
            f"postgresql://postgres:{PASSWORD}@/postgres?{hosts}&target_session_attrs=read-write"
        )

    def node_url(self, node: Node) -> str:
        """One node alone (a read replica's URL: `DATABASE_REPLICA_URL`)."""
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{node.pg_port}/postgres"

    def restart_node(self, node: Node) -> None:
        """Bring a killed node back: what its machine's boot does. Patroni rewinds it
        (``use_pg_rewind``) and it rejoins as a replica of the new primary."""
        self._kill_postgres(node)  # a SIGKILLed postmaster's backends, if any are left
        self.start_node(node)

    async def wait_member(self, name: str, roles: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            members = (await self.cluster()).get("members", [])
            last = members
            if any(m.get("name") == name and m.get("role") in roles
                   and m.get("state") in ("running", "streaming") for m in members):  # fmt: skip
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{name} not {roles} within {timeout}s: {last}; see {self.dir}")

    # ---- processes -------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        log = (self.dir / "etcd.log").open("ab")
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        argv = [
            "etcd", "--name", "e1", "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"e1={peer}", "--initial-cluster-state", "new",
        ]  # fmt: skip
        try:
            self.etcd = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def start_node(self, node: Node) -> None:
        log = (node.dir / "patroni.out").open("ab")
        try:
            node.proc = subprocess.Popen(
                ["patroni", str(node.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_clean_env(), "HOME": str(node.dir)},
                cwd=node.dir,
                start_new_session=True,
                user=self.account[0] if self.account else None,
                group=self.account[1] if self.account else None,
                extra_groups=() if self.account else None,
            )
        finally:
            log.close()

    async def __aenter__(self) -> Self:
        try:
            self._start_etcd()
            await self._wait_http(f"http://127.0.0.1:{self.etcd_port}/health", "etcd")
            self.start_node(self.nodes[0])
            await self.wait_primary(timeout=90)
            for node in self.nodes[1:]:
                self.start_node(node)
            await self.wait_sync_standby(timeout=120)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for node in self.nodes:
            await asyncio.to_thread(self._stop_node, node)
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.terminate()
            await asyncio.to_thread(self.etcd.wait, 15)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_node(self, node: Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.terminate()  # Patroni stops its PostgreSQL on SIGTERM
            try:
                node.proc.wait(60)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        self._kill_postgres(node)  # whatever is left (a killed node's orphans)

    def _kill_postgres(self, node: Node) -> None:
        pid = node.postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for p in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in victims):
            time.sleep(0.05)

    # ---- state -----------------------------------------------------------------------------

    async def _wait_http(self, url: str, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{what} did not answer at {url}; see {self.dir}")

    async def role(self, node: Node) -> int | None:
        """GET /primary's status on a node (200: the leader), None: not answering."""
        async with httpx.AsyncClient(timeout=2) as http:
            try:
                return (await http.get(f"{node.api}/primary")).status_code
            except httpx.HTTPError:
                return None

    async def primary(self) -> Node | None:
        for node in self.nodes:
            alive = node.proc is not None and node.proc.poll() is None
            if alive and await self.role(node) == 200:
                return node
        return None

    async def wait_primary(self, timeout: float = 60, other_than: Node | None = None) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await self.primary()
            if found is not None and found is not other_than:
                return found
            await asyncio.sleep(0.2)
        raise RuntimeError(f"no Patroni leader within {timeout}s; logs in {self.dir}")

    async def cluster(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=2) as http:
            for node in self.nodes:
                with contextlib.suppress(httpx.HTTPError, json.JSONDecodeError):
                    doc: dict[str, Any] = (await http.get(f"{node.api}/cluster")).json()
                    return doc
        return {}

    async def wait_sync_standby(self, timeout: float = 60) -> None:
        """Until a member is the synchronous standby, streaming."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            members = (await self.cluster()).get("members", [])
            last = members
            if any(m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")
                   for m in members):  # fmt: skip
                return
            await asyncio.sleep(0.3)
        raise RuntimeError(f"no synchronous standby within {timeout}s: {last}; see {self.dir}")

    async def kill_primary(self) -> Node:
        """SIGKILL the leader's Patroni and its PostgreSQL; returns the node killed."""
        node = await self.primary()
        assert node is not None, "no primary to kill"
        assert node.proc is not None
        pid = node.postmaster_pid()
        victims = [node.proc.pid, *([pid, *_children(pid)] if pid else [])]
        for p in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        await asyncio.to_thread(node.proc.wait, 10)
        return node


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
