"""One API node on its own: `python -m bff.serve` (DATABASE_URL, REDIS_URL, PORT, HOST).

`bourse up` runs the API in-process with everything else; this entry point is for scaling out
(any number of stateless API nodes behind a load balancer) and for tests that kill the API
process alone. It never starts embedded servers: the URLs must be set.
"""

from __future__ import annotations

import asyncio
import sys

from bff.app import create_app
from bourse.process import api_server, serve_until, service_main
from bourse.settings import Settings


async def serve(settings: Settings, database_url: str, redis_url: str, stop: asyncio.Event) -> None:
    await serve_until(api_server(create_app(settings, database_url, redis_url), settings), stop)


def main() -> int:
    return service_main(serve, name="bourse-api")


if __name__ == "__main__":
    sys.exit(main())
