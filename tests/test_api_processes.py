"""Several API processes on one port (``BOURSE_API_PROCESSES``, SO_REUSEPORT): both bind, the
kernel spreads connections over them, and losing one leaves the port served."""

from __future__ import annotations

import asyncio

import httpx

from bourse.settings import Settings
from tests.support.stack import Stack


async def test_two_api_processes_share_the_port_and_survive_losing_one(
    settings: Settings,
) -> None:
    stack = Stack(settings, shards=1, liquidity=False)
    stack.env["BOURSE_API_PROCESSES"] = "2"
    try:
        await stack.start_all()
        stack.commands["api-2"] = stack.commands["api"]
        await stack.start("api-2")  # binds the same port: it would exit at once without
        await asyncio.sleep(1.0)
        assert stack.procs["api"].returncode is None
        assert stack.procs["api-2"].returncode is None
        # From the outside the two are one API; then one dies and the port is still served.
        for _ in range(20):
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                assert (await http.get("/readyz")).status_code == 200
        await stack.kill("api")
        # The second process may still be starting (it was not waited for): once it is ready,
        # it serves the port alone.
        await stack.wait_ready()
        for _ in range(10):
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                assert (await http.get("/readyz")).status_code == 200
    finally:
        await stack.stop_all()
