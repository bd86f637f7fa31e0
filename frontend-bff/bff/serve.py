"""One API node on its own: `python -m bff.serve` (DATABASE_URL, REDIS_URL, PORT, HOST).

`bourse up` runs the API in-process with everything else; this entry point is for scaling out
(any number of stateless API nodes behind a load balancer) and for tests that kill the API
process alone. It never starts embedded servers: the URLs must be set.
"""

from __future__ import annotations

import sys

import uvicorn

from bff.app import create_app
from bourse.logs import configure_logging
from bourse.settings import get_settings


def main() -> int:
    settings = get_settings()
    if not settings.database_url or not settings.redis_url:
        print("DATABASE_URL and REDIS_URL are required", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    app = create_app(settings, settings.database_url, settings.redis_url)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # small frames to many subscribers: not worth the CPU
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
