"""``python -m workers.fix``: the FIX 4.4 gateway on ``BOURSE_FIX_PORT`` (default 9878)."""

from __future__ import annotations

import asyncio
import sys

from bourse.process import service_main
from bourse.settings import Settings
from models.services import open_services
from workers.fix.gateway import Gateway, fix_port


def main() -> int:
    async def run(
        settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event
    ) -> None:
        # Each session uses up to two connections at once (its order entry and its event pump):
        # with 4 (and 4 overflow), 8 busy partner sessions opened and closed a connection per
        # order (the FIX bench: 22-70 orders/s, p99 up to 7 s); the default pool keeps them.
        async with open_services(settings, database_url, redis_url) as services:
            await Gateway(services).serve(settings.fix_host, fix_port(settings), stop)

    return service_main(run)


if __name__ == "__main__":
    sys.exit(main())
