"""The whole platform as real processes, each one killable: the API, and the processes
`bourse up` runs (`bourse.app.platform.child_commands`, the one definition): shards, settlement
(one per shard), the liquidity provider and, when asked, the market-data feed.

Every component runs as in production (`python -m ...`, the same arguments), against the test
run's PostgreSQL database and a Redis key prefix of its own. The feed is off by default: it
moves reference prices, and most trading tests assert exact fills. `kill(name)` sends SIGKILL
and `start(name)` brings one back, for fault tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bourse.app.loadbalancer import Node, haproxy_argv, haproxy_binary, haproxy_config
from bourse.app.platform import (
    API_COMMAND,
    NODE_HOST,
    child_commands,
    node_env,
    node_trusted_proxies,
    service_env,
)
from bourse.runtime import ServiceUrls
from bourse.settings import Settings
from models.services import Services, open_services
from tests.support.server import Api, free_port


class Stack:
    def __init__(
        self,
        settings: Settings,
        *,
        shards: int = 2,
        liquidity: bool = True,
        feed: bool = False,
        jobs: bool = False,
        log_dir: Path | None = None,
        metrics_dir: Path | None = None,
        api_nodes: int = 1,
        work_dir: Path | None = None,
    ) -> None:
        """`jobs`: a job worker process too (`python -m workers.jobs`). `log_dir`: every
        process logs at INFO, as in production, to `log_dir/<name>.log` (else WARNING, to the
        test's stderr). `api_nodes` > 1: API nodes `api-1` … `api-N` behind HAProxy
        (`haproxy`, its configuration and admin socket in `work_dir`), as `bourse up
        --api-nodes N` runs them; `base_url` is then the balancer."""
        self.log_dir = log_dir
        level = "INFO" if log_dir else "WARNING"
        self.prefix = f"{settings.redis_prefix}stk{uuid.uuid4().hex[:6]}:"
        self.port = free_port()
        while self.port == settings.fix_port:  # both were "free" until one of them binds
            self.port = free_port()
        self.shards = shards
        self.settings = settings.model_copy(
            update={
                "redis_prefix": self.prefix,
                "matching_shards": shards,
                "market_hours": "always",
                "log_level": level,
            }
        )
        urls = ServiceUrls(settings.database_url or "", settings.redis_url or "", embedded=False)
        self.env: dict[str, str] = {
            **os.environ,
            **service_env(settings, urls),
            "BOURSE_REDIS_PREFIX": self.prefix,
            "BOURSE_ENV": "test",
            "BOURSE_SECRET_KEY": settings.secret_key or "",
            "BOURSE_VAR_DIR": str(settings.var_dir),
            "BOURSE_MATCHING_SHARDS": str(shards),
            "BOURSE_MARKET_HOURS": "always",
            "BOURSE_LP_INTERVAL_SECONDS": "0.2",
            "BOURSE_LOG_LEVEL": level,
            "BOURSE_WEBHOOK_RETRY_BASE_SECONDS": str(settings.webhook_retry_base_seconds),
            "BOURSE_WEBHOOK_MAX_ATTEMPTS": str(settings.webhook_max_attempts),
            "BOURSE_WEBHOOK_POLL_SECONDS": str(settings.webhook_poll_seconds),
            # Every client of a test (or benchmark) stack is one address, 127.0.0.1.
            "BOURSE_MUTATIONS_PER_MINUTE_PER_IP": "0",
            "BOURSE_MUTATIONS_PER_MINUTE_PER_USER": str(settings.mutations_per_minute_per_user),
            **({"SMTP_URL": settings.smtp_url} if settings.smtp_url else {}),
            **({"BOURSE_FIX_PORT": str(settings.fix_port)} if settings.fix_port else {}),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
        }
        # Prometheus multiprocess mode, as `bourse up` runs it: the API's /metrics sums all.
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if metrics_dir is not None:
            metrics_dir.mkdir(parents=True, exist_ok=True)
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        wanted = {"liquidity": liquidity, "marketdata-feed": feed}
        self.commands: dict[str, list[str]] = {
            name: argv
            for name, argv in child_commands(self.settings, urls)
            if wanted.get(name, True)
        }
        if jobs:
            self.commands["jobs"] = [sys.executable, "-m", "workers.jobs"]
        # Per-process environments where they differ from `env` (the API nodes' ports).
        self.envs: dict[str, dict[str, str]] = {}
        self.nodes: list[Node] = []
        self.admin_socket: Path | None = None
        if api_nodes == 1:
            self.commands["api"] = API_COMMAND
        else:
            self._balance(api_nodes, work_dir)
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _balance(self, count: int, work_dir: Path | None) -> None:
        binary = haproxy_binary()
        if binary is None or work_dir is None:
            raise RuntimeError("several API nodes need Debian's haproxy and a work_dir")
        trusted = node_trusted_proxies(self.settings)
        self.nodes = [Node(f"api-{i}", NODE_HOST, free_port()) for i in range(1, count + 1)]
        for node in self.nodes:
            self.commands[node.name] = API_COMMAND
            self.envs[node.name] = node_env(self.env, node, trusted)
        self.admin_socket = work_dir / "haproxy.sock"
        config = work_dir / "haproxy.cfg"
        # Checks every 300 ms: a killed node is out of the pool within a second.
        config.write_text(
            haproxy_config(
                "127.0.0.1", self.port, self.nodes, admin_socket=self.admin_socket,
                check_interval_ms=300,
            )
        )  # fmt: skip
        self.commands["haproxy"] = haproxy_argv(binary, config)

    def is_api(self, name: str) -> bool:
        return name == "api" or any(node.name == name for node in self.nodes)

    async def start(self, name: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab") if self.log_dir else None
        try:
            self.procs[name] = await asyncio.create_subprocess_exec(
                *self.commands[name],
                env=self.envs.get(name, self.env),
                stdout=log or asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        finally:
            if log:
                log.close()  # the child holds its own descriptor
        if name == "api":
            await self.wait_ready()
        elif self.is_api(name):
            await self.wait_ready(node=name)

    async def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def wait_ready(self, timeout: float = 90, *, node: str | None = None) -> None:
        """Until `/readyz` answers 200: the API's, or one node's (`node`) directly."""
        # Generous: every process of the stack imports the platform at once, and on a shared
        # two-core machine under load the API was seen to take 40 s to bind its port.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        base = self.base_url
        if node is not None:
            port = next(n.port for n in self.nodes if n.name == node)
            base = f"http://{NODE_HOST}:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                if loop.time() > deadline:
                    raise TimeoutError("the API never became ready")
                proc = self.procs.get(node or ("haproxy" if self.nodes else "api"))
                if proc is not None and proc.returncode is not None:
                    raise RuntimeError(f"the API ({node or 'api'}) exited with {proc.returncode}")
                await asyncio.sleep(0.1)

    async def start_all(self) -> None:
        for name in self.commands:
            if not self.is_api(name) and name != "haproxy":
                await self.start(name)
        if self.nodes:
            await asyncio.gather(*(self.start(node.name) for node in self.nodes))
            await self.start("haproxy")
            await self.wait_ready()
        else:
            await self.start("api")

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for name, proc in list(self.procs.items()):
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            del self.procs[name]

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Api]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            yield Api(self.base_url, http)

    @asynccontextmanager
    async def services(self, pool_size: int = 4) -> AsyncIterator[Services]:
        """In-process services on the stack's database, Redis key prefix and bucket: what a
        test reads and arranges beside the processes."""
        s = self.settings
        assert s.database_url
        assert s.redis_url
        async with open_services(s, s.database_url, s.redis_url, pool_size=pool_size) as opened:
            yield opened


@asynccontextmanager
async def running_stack(settings: Settings, **kwargs: Any) -> AsyncIterator[Stack]:
    stack = Stack(settings, **kwargs)
    try:
        await stack.start_all()
        yield stack
    finally:
        await stack.stop_all()
