"""`bourse up` as a user runs it: every component starts, /readyz turns 200, SIGINT stops all;
with `--api-nodes 2`, HAProxy serves the port in front of two API nodes, both in its pool."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from bourse.settings import Settings
from tests.scale.test_api_nodes import haproxy_servers
from tests.support.polling import eventually
from tests.support.server import free_port


@pytest.mark.parametrize("nodes", [1, 2])
async def test_bourse_up_serves_becomes_ready_and_stops_cleanly(
    settings: Settings, tmp_path: Path, nodes: int
) -> None:
    stderr_path = tmp_path / "bourse-up.stderr"
    stderr_log = stderr_path.open("wb")
    port = free_port()
    while any(_in_use(port + i) for i in range(1, nodes + 1)):  # the nodes take the next ports
        port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "BOURSE_REDIS_PREFIX": settings.redis_prefix + "up:",
        "BOURSE_VAR_DIR": str(settings.var_dir),
        "BOURSE_SECRET_KEY": settings.secret_key or "",
        "BOURSE_MATCHING_SHARDS": "2",
        "PORT": str(port),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", "up", "--api-nodes", str(nodes),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr_log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        banner = b""
        while b"Press Ctrl-C" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, "bourse up exited before serving"
            banner += line
        assert f"Point a browser at:  {base}/ ".encode() in banner  # the web app first
        assert f"{base}/graphql".encode() in banner
        async with httpx.AsyncClient(base_url=base) as http:
            # shards start as child processes: allow them a moment (more on a loaded machine)
            ready = await eventually(
                lambda: http.get("/readyz"),
                lambda r: r.status_code == 200,
                timeout=30,
                interval=0.1,
                what="/readyz answering 200",
            )
            assert ready.json()["checks"] == {"postgres": True, "redis": True, "matching": True}
            if nodes > 1:
                assert b"Load balancer:       HAProxy" in banner
                admin = settings.var_dir / "haproxy" / "admin.sock"
                await eventually(
                    lambda: asyncio.sleep(0, haproxy_servers(admin)),
                    lambda servers: servers == {"api-1": "UP", "api-2": "UP"},
                    timeout=30,
                    what="both API nodes up in HAProxy's pool",
                )
            # Production: only trusted documents run (the web client's manifest), so an
            # ad-hoc query is refused, with its code, by a GraphQL endpoint that answers.
            me = await http.post("/graphql", json={"query": "{ me { id } }"})
            assert me.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    stderr_log.close()
    assert code == 0, stderr_path.read_text()[-4000:]
    # Nothing is left listening: neither the port nor any node.
    for i in range(1, nodes + 1 if nodes > 1 else 1):
        assert not _in_use(port + i), f"API node on {port + i} still listening"
    async with httpx.AsyncClient(base_url=base) as http:
        try:
            await http.get("/healthz")
            raise AssertionError("the API still answers after Ctrl-C")
        except httpx.ConnectError:
            pass


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
