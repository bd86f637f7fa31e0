"""``python -m workers.marketdata``: the market-data feed process (``bourse up`` runs it).

Reads ``DATABASE_URL`` and ``REDIS_URL`` (required) and the ``BOURSE_*`` settings; stops
cleanly on SIGINT / SIGTERM (last quotes flushed, reference prices stored, lease released).
"""

from __future__ import annotations

from bourse.process import service_main
from workers.marketdata.run import run_feed


def main() -> int:
    return service_main(run_feed)


if __name__ == "__main__":
    raise SystemExit(main())
