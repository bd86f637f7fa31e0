"""`bourse up`: every component of the platform, in the foreground, stopped cleanly on Ctrl-C.

In-process: the API (uvicorn) and the arq worker; with ``BOURSE_API_PROCESSES=N``, N-1 more API
processes (``bff.serve``) on the same port (SO_REUSEPORT). Child processes: one per matching
shard (they are CPU-bound and must not share the API's event loop) and the market-data feed
(``python -m workers.marketdata``: its steady tick load stays off the API's loop, and a crash of
it cannot take the API down). A child that dies is restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import suppress

import structlog

from bff.app import create_app
from bourse import metrics
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


async def run_platform(settings: Settings, urls: ServiceUrls) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    app = create_app(settings, urls.database_url, urls.redis_url)
    server = api_server(app, settings)
    worker = build_worker(settings, urls.redis_url, database_url=urls.database_url)
    env = {**os.environ, **service_env(settings, urls)}
    # More API processes on the same port (SO_REUSEPORT), each a `bff.serve` child.
    api_env = {
        **env,
        "HOST": settings.host,
        "PORT": str(settings.port),
        "BOURSE_API_PROCESSES": str(settings.api_processes),
    }
    extra_apis = [(f"api-{i}", API_COMMAND) for i in range(1, settings.api_processes)]

    tasks = [
        asyncio.create_task(server.serve(), name="api"),
        asyncio.create_task(worker.async_run(), name="worker"),
        *(
            asyncio.create_task(_supervise(name, argv, env, stop), name=name)
            for name, argv in child_commands(settings, urls)
        ),
        *(
            asyncio.create_task(_supervise(name, argv, api_env, stop), name=name)
            for name, argv in extra_apis
        ),
    ]
    while not server.started and not tasks[0].done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.05)
    if tasks[0].done():
        stop.set()
        print("The API could not start (is the port in use?). See the log above.", file=sys.stderr)
    else:
        base = f"http://{settings.host}:{settings.port}"
        ws_url = f"ws://{settings.host}:{settings.port}/graphql"
        mail = settings.smtp_url or f"{settings.var_dir / 'mail'}/ (.eml files)"
        print(
            "\nBourse is up.\n"
            f"  Point a browser at:  {base}/  (the web app; demo customer demo@example.com)\n"
            f"  GraphiQL:            {base}/graphql\n"
            f"  Staff sign-in:       {base}/console/login\n"
            f"  GraphQL:             POST {base}/graphql   websockets: {ws_url}\n"
            f"  Health / readiness:  {base}/healthz   {base}/readyz\n"
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
