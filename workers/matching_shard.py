"""A matching shard with PostgreSQL as its system of record.

    python -m workers.matching_shard --shard K --shards N [the options of python -m matching.shard]

The shard runner of ``matching.shard``, given ``models.engine_record.EngineRecord``: when the
shard finds its Redis state missing, from another epoch or behind what was settled, it rebuilds
its books from PostgreSQL's open orders (``matching/rebuild.py``). DATABASE_URL comes from the
environment; PostgreSQL is needed only to check the epoch at start and after a Redis error, and
to rebuild: while it is down, matching carries on, and a check that cannot reach it is retried
with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from bourse import tracing
from matching.shard import Shard
from matching.shard_config import parse_config
from models.db import create_engine, create_sessionmaker
from models.engine_record import EngineRecord


async def run(argv: Sequence[str] | None, database_url: str) -> None:
    config, _level = parse_config(argv, description=__doc__)
    engine = create_engine(database_url, pool_size=1)
    try:
        record = EngineRecord(create_sessionmaker(engine), config.prefix)
        shard = Shard(config, record=record)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shard.stop)
        await shard.run()
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL is required", file=sys.stderr)
        return 2
    _config, level = parse_config(argv, description=__doc__)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    tracing.configure("bourse-shard")
    asyncio.run(run(argv, database_url))
    tracing.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
