"""The app served from its own thread and event loop, for synchronous clients (schemathesis)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bff.app import create_app
from bourse.process import ApiServer, uvicorn_config
from bourse.settings import Settings
from tests.support.server import free_port


@contextmanager
def threaded_api(settings: Settings) -> Iterator[str]:
    assert settings.database_url
    assert settings.redis_url
    port = free_port()
    app = create_app(settings, settings.database_url, settings.redis_url)
    server = ApiServer(
        uvicorn_config(app, settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
