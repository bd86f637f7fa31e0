"""``python -m workers.marketdata``: the market-data feed process (``bourse up`` runs it).

Reads ``DATABASE_URL`` and ``REDIS_URL`` (required) and the ``BOURSE_*`` settings; stops
cleanly on SIGINT / SIGTERM (last quotes flushed, reference prices stored, lease released).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bourse.logs import configure_logging
from bourse.settings import get_settings
from workers.marketdata.run import run_feed


async def _main() -> int:
    settings = get_settings()
    database_url = os.environ.get("DATABASE_URL") or settings.database_url
    redis_url = os.environ.get("REDIS_URL") or settings.redis_url
    if not database_url or not redis_url:
        print("DATABASE_URL and REDIS_URL must be set", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_feed(settings, database_url, redis_url, stop)
    return 0


def main() -> int:
    configure_logging(get_settings().log_level)
    return asyncio.run(_main())


if __name__ == "__main__":
    raise SystemExit(main())
