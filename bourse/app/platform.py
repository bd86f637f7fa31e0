"""`bourse up`: every component of the platform, in the foreground, stopped cleanly on Ctrl-C.

In-process: the API (uvicorn) and the arq worker; with ``BOURSE_API_PROCESSES=N``, N-1 more API
processes (``bff.serve``) on the same port (SO_REUSEPORT). With ``--api-nodes N``
(``BOURSE_API_NODES``), HAProxy serves the port instead, in front of N API nodes on the next N
ports (the in-process API is the first; ``bourse.app.loadbalancer``).

Child processes: one per matching shard (they are CPU-bound and must not share the API's event
loop) and the market-data feed (``python -m workers.marketdata``: its steady tick load stays off
the API's loop, and a crash of it cannot take the API down). A child that dies is restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import suppress
from dataclasses import dataclass, field

import structlog

from bff.app import create_app
from bourse import metrics
from bourse.app.loadbalancer import Node, haproxy_argv, haproxy_binary, haproxy_config
from bourse.process import api_server
from bourse.runtime import ServiceUrls
from bourse.settings import Settings
from workers.jobs import build_worker

log = structlog.get_logger("bourse.app.platform")
RESTART_DELAY_S = 1.0


async def _supervise(name: str, argv: list[str], env: dict[str, str], stop: asyncio.Event) -> None:
    """Run a child process until `stop`; restart it if it dies on its own."""
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(*argv, env=env)
        log.info("component started", component=name, pid=proc.pid)
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            waiter.cancel()
            log.info("component stopped", component=name)
            return
        stopper.cancel()
        metrics.mark_dead(proc.pid)  # its live gauges stop counting
        log.warning("component exited; restarting", component=name, code=proc.returncode)
        await asyncio.sleep(RESTART_DELAY_S)


def child_commands(settings: Settings, urls: ServiceUrls) -> list[tuple[str, list[str]]]:
    """The platform's processes besides the in-process API and job worker, by name: this is
    the one definition, also used by the tests' and benchmarks' stack (tests/support/stack.py).
    They read DATABASE_URL / REDIS_URL and the BOURSE_* settings from the environment the
    supervisor passes them."""

    def shard(k: int) -> list[str]:
        return [
            # The shard runner with PostgreSQL as its record: a lost Redis state is rebuilt
            # from the open orders (matching/rebuild.py).
            sys.executable, "-m", "workers.matching_shard",
            "--shard", str(k), "--shards", str(settings.matching_shards),
            "--redis-url", urls.redis_url, "--prefix", settings.redis_prefix,
            "--log-level", settings.log_level,
            # The feed sends a few REFERENCE_PRICE commands per asset per second: trim the
            # input stream up to each snapshot so it does not grow without end.
            "--trim-input",
        ]  # fmt: skip

    shards = range(settings.matching_shards)
    commands = [(f"shard-{k}", shard(k)) for k in shards]
    # Settlement (events -> PostgreSQL, outbox relay, DAY expiry, stream trimming): one process
    # per shard, so settlement scales with the shards (accounts are locked in id order, so two
    # of them touching one user's cash cannot deadlock; the relay and the expiry are safe to
    # run in several processes).
    settle = [sys.executable, "-m", "workers.settlement", "--shards"]
    commands += [(f"settlement-{k}", [*settle, str(k)]) for k in shards]
    commands.append(("liquidity", [sys.executable, "-m", "workers.liquidity"]))
    commands.append(("marketdata-feed", [sys.executable, "-m", "workers.marketdata"]))
    # Price alerts, evaluated on the feed's quotes (every asset; `--partition K --partitions N`
    # splits them by asset across processes).
    commands.append(("alerts", [sys.executable, "-m", "workers.alerts"]))
    # The FIX 4.4 order-entry gateway, only when a port is configured (BOURSE_FIX_PORT).
    if settings.fix_port:
        commands.append(("fix", [sys.executable, "-m", "workers.fix"]))
    return commands


def service_env(settings: Settings, urls: ServiceUrls) -> dict[str, str]:
    """The variables that point a child process at this platform's services (S3 included)."""
    env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
    if settings.database_replica_url:
        env["DATABASE_REPLICA_URL"] = settings.database_replica_url
    if settings.jobs_redis_url:
        env["BOURSE_JOBS_REDIS_URL"] = settings.jobs_redis_url
    if settings.s3_endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = settings.s3_endpoint_url
    if settings.s3_bucket:
        env["BOURSE_S3_BUCKET"] = settings.s3_bucket
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key
    env["AWS_REGION"] = settings.s3_region
    return env


# One more API node (stateless, any number behind a load balancer); `bourse up` runs its API
# in-process instead.
API_COMMAND = [sys.executable, "-m", "bff.serve"]


@dataclass(frozen=True)
class ApiLayout:
    """Where the API serves: the in-process node's settings, the other API processes (name,
    argv, environment) and, with several nodes, HAProxy's command line in front of them."""

    settings: Settings
    children: list[tuple[str, list[str], dict[str, str]]] = field(default_factory=list)
    balancer: list[str] | None = None
    nodes: list[Node] = field(default_factory=list)


# The API nodes listen on loopback: only the balancer in front of them is reachable.
NODE_HOST = "127.0.0.1"


def api_layout(settings: Settings, env: dict[str, str]) -> ApiLayout:
    """One node (with ``BOURSE_API_PROCESSES`` processes on PORT), or HAProxy on PORT in front
    of ``api_nodes`` nodes on the next ports. Raises ValueError for a layout it cannot run."""
    if settings.api_nodes == 1:
        # More API processes on the same port (SO_REUSEPORT), each a `bff.serve` child.
        api_env = {
            **env,
            "HOST": settings.host,
            "PORT": str(settings.port),
            "BOURSE_API_PROCESSES": str(settings.api_processes),
        }
        extra = [(f"api-{i}", API_COMMAND, api_env) for i in range(1, settings.api_processes)]
        return ApiLayout(settings, extra)
    if settings.api_processes > 1:
        raise ValueError("use either BOURSE_API_PROCESSES or --api-nodes, not both")
    binary = haproxy_binary()
    if binary is None:
        raise ValueError(
            "--api-nodes needs HAProxy in front of the nodes: install Debian's package"
            " (sudo apt-get install haproxy)"
        )
    nodes = [
        Node(f"api-{i}", NODE_HOST, settings.port + i) for i in range(1, settings.api_nodes + 1)
    ]
    trusted = node_trusted_proxies(settings)
    first = settings.model_copy(
        update={"host": NODE_HOST, "port": nodes[0].port, "trusted_proxies": trusted}
    )
    children = [(node.name, API_COMMAND, node_env(env, node, trusted)) for node in nodes[1:]]
    config = settings.var_dir / "haproxy" / "haproxy.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        haproxy_config(
            settings.host, settings.port, nodes, admin_socket=config.parent / "admin.sock"
        )
    )
    return ApiLayout(first, children, haproxy_argv(binary, config), nodes)


def node_trusted_proxies(settings: Settings) -> list[str]:
    """Behind the balancer, its X-Forwarded-For names the client (per-IP limits)."""
    return [*settings.trusted_proxies, NODE_HOST]


def node_env(env: dict[str, str], node: Node, trusted: list[str]) -> dict[str, str]:
    """The environment of one API node (``bff.serve``) behind the balancer."""
    return {
        **env,
        "HOST": node.host,
        "PORT": str(node.port),
        "BOURSE_API_PROCESSES": "1",
        "BOURSE_TRUSTED_PROXIES": json.dumps(trusted),
    }


async def _wait_listening(host: str, port: int, *, within: float) -> None:
    """Until something accepts connections on ``host:port`` (HAProxy, started as a child)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        return
    log.warning("the load balancer is not listening yet", host=host, port=port)


async def run_platform(settings: Settings, urls: ServiceUrls) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    env = {**os.environ, **service_env(settings, urls)}
    try:
        layout = api_layout(settings, env)
    except ValueError as problem:
        print(f"bourse up: {problem}", file=sys.stderr)
        return 2
    app = create_app(layout.settings, urls.database_url, urls.redis_url)
    server = api_server(app, layout.settings)
    worker = build_worker(settings, urls.redis_url, database_url=urls.database_url)
    extra_apis = [(name, argv, child_env) for name, argv, child_env in layout.children]
    if layout.balancer is not None:
        extra_apis.append(("haproxy", layout.balancer, env))

    tasks = [
        asyncio.create_task(server.serve(), name="api"),
        asyncio.create_task(worker.async_run(), name="worker"),
        *(
            asyncio.create_task(_supervise(name, argv, env, stop), name=name)
            for name, argv in child_commands(settings, urls)
        ),
        *(
            asyncio.create_task(_supervise(name, argv, child_env, stop), name=name)
            for name, argv, child_env in extra_apis
        ),
    ]
    while not server.started and not tasks[0].done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.05)
    if layout.balancer is not None and not tasks[0].done():
        await _wait_listening(settings.host, settings.port, within=15)
    if tasks[0].done():
        stop.set()
        print("The API could not start (is the port in use?). See the log above.", file=sys.stderr)
    else:
        base = f"http://{settings.host}:{settings.port}"
        ws_url = f"ws://{settings.host}:{settings.port}/graphql"
        mail = settings.smtp_url or f"{settings.var_dir / 'mail'}/ (.eml files)"
        if layout.nodes:
            ports = ", ".join(str(node.port) for node in layout.nodes)
            nodes = f"  Load balancer:       HAProxy in front of API nodes on ports {ports}\n"
        else:
            nodes = ""
        print(
            "\nBourse is up.\n"
            f"  Point a browser at:  {base}/  (the web app; demo customer demo@example.com)\n"
            f"  GraphiQL:            {base}/graphql\n"
            f"  Staff sign-in:       {base}/console/login\n"
            f"  GraphQL:             POST {base}/graphql   websockets: {ws_url}\n"
            f"  Health / readiness:  {base}/healthz   {base}/readyz\n"
            f"{nodes}"
            f"  PostgreSQL: {urls.database_url}\n  Redis:      {urls.redis_url}\n"
            f"  S3:         {settings.s3_endpoint_url or 'AWS'} bucket {settings.s3_bucket}\n"
            f"  Mail:       {mail}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
    await stop.wait()
    log.info("stopping")
    server.should_exit = True
    # arq cancels jobs still running (e.g. a cron job run at startup) and its close() then
    # re-raises their CancelledError: gathered, so a cancelled job is not a failed shutdown.
    (closed,) = await asyncio.gather(worker.close(), return_exceptions=True)
    if isinstance(closed, BaseException) and not isinstance(closed, asyncio.CancelledError):
        log.error("worker failed to close", error=repr(closed))
    for task in tasks[1:]:
        if task.get_name() == "worker":
            task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            log.error("component failed", component=task.get_name(), error=repr(result))
    with suppress(Exception):
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0 if server.started else 1
