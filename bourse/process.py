"""The one way a Bourse process starts: settings, logs, service URLs, signals, event loop.

Every long-running component (``python -m workers.settlement``, ``workers.liquidity``,
``workers.marketdata``, ``bff.serve``) is ``service_main(run)`` with its own ``run``; the API
servers (``bff.serve`` and ``bourse up``) share ``uvicorn_config``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from bourse import tracing
from bourse.logs import configure_logging
from bourse.redis_client import JobsRedisRequired, jobs_url
from bourse.settings import Settings, get_settings

# run(settings, database_url, redis_url, stop): returns when ``stop`` is set (SIGINT / SIGTERM).
Run = Callable[[Settings, str, str, asyncio.Event], Awaitable[None]]


def service_main(run: Run, name: str | None = None) -> int:
    """Run one component until SIGINT / SIGTERM: 0 on a clean stop, 2 without service URLs.

    The loop is uvloop: every component is mostly socket I/O to PostgreSQL and Redis.
    """
    settings = get_settings()
    if not settings.database_url or not settings.redis_url:
        print("DATABASE_URL and REDIS_URL are required", file=sys.stderr)
        return 2
    try:
        jobs_url(settings.redis_url, settings.jobs_redis_url)
    except JobsRedisRequired as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    tracing.configure(name or f"bourse-{Path(sys.argv[0]).stem}")
    database_url, redis_url = settings.database_url, settings.redis_url

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, database_url, redis_url, stop)

    freeze_heap()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    tracing.shutdown()
    return 0


def freeze_heap() -> None:
    """Take the objects alive now (modules, classes, the schema, pools: what start-up built and
    the process keeps) out of the cyclic collector's generations (``gc.freeze``), so that a full
    collection scans only what was created since. Measured: in an API process a full (gen 2)
    collection took 180-250 ms (a gc callback around ``bench/candles_query.py``), and those
    pauses were the read paths' p99; the frozen objects are never freed, which is what they
    are for. Called before each service's loop and again when the API's start-up is done."""
    gc.collect()
    gc.freeze()


class ApiServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the process's stop event (or ``bourse up``,
    which stops every component, not only the API) ends it through ``should_exit``.

    With ``reuse_port`` it binds its listening socket with ``SO_REUSEPORT``: several API
    processes then serve one port and the kernel spreads new connections over them (each
    process has its own hub and token cache; nothing else is shared)."""

    def __init__(self, config: uvicorn.Config, *, reuse_port: bool = False) -> None:
        super().__init__(config)
        self.reuse_port = reuse_port

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None and self.reuse_port:
            sockets = [_reuse_port_socket(self.config.host, self.config.port)]
        await super().serve(sockets=sockets)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def api_server(app: Any, settings: Settings) -> ApiServer:
    return ApiServer(uvicorn_config(app, settings), reuse_port=settings.api_processes > 1)


async def serve_until(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set (then drain and return) or the server ends on its own."""
    serving = asyncio.ensure_future(server.serve())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How every API process serves: its host and port, our logs, websockets without
    per-message deflate (small JSON frames to many subscribers: compression costs more CPU than
    it saves), no proxy headers trusted (`bff.app` applies BOURSE_TRUSTED_PROXIES), TLS when
    the settings hold a certificate."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        proxy_headers=False,
        server_header=False,  # no `server: uvicorn` (bff.security_headers sets the rest)
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
