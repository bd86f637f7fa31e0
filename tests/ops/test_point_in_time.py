"""Point-in-time recovery: `bourse restore --to T` brings back exactly what was committed by T,
from a base backup taken before it and the WAL archived after; the cluster it replaces is kept;
a time before every base backup is refused with a clear message; a later restore to the end
of the archive follows the newest timeline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bourse.embedded import PG_DATABASE, EmbeddedPostgres


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bourse-pitr-"))
    path.chmod(0o755)  # as root, PostgreSQL runs as `nobody`
    try:
        yield path
    finally:
        with contextlib.suppress(Exception):
            EmbeddedPostgres(path).stop(force=True)
        shutil.rmtree(path, ignore_errors=True)


async def bourse(root: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"BOURSE_VAR_DIR": str(root), "BOURSE_PG_ARCHIVE_TIMEOUT_SECONDS": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def sql(pg: EmbeddedPostgres, statement: str) -> str:
    url = pg.url
    assert url is not None
    port = make_url(url).port
    assert port is not None
    return pg._psql(port, statement, database=PG_DATABASE)


async def test_restore_to_a_moment_brings_back_exactly_what_was_committed_by_then(
    root: Path,
) -> None:
    pg = EmbeddedPostgres(root, archive_timeout=1)
    await asyncio.to_thread(pg.start)
    sql(pg, "CREATE TABLE ledger_note (n int, at timestamptz DEFAULT clock_timestamp())")
    sql(pg, "INSERT INTO ledger_note (n) VALUES (1)")
    code, out = await bourse(root, "backup")
    assert code == 0, out
    sql(pg, "INSERT INTO ledger_note (n) VALUES (2)")
    time.sleep(0.5)
    moment = datetime.now(UTC)
    time.sleep(0.5)
    sql(pg, "INSERT INTO ledger_note (n) VALUES (3)")
    time.sleep(2.5)  # past the archive timeout: the segment holding row 3 is archived
    await asyncio.to_thread(pg.stop)

    code, out = await bourse(root, "restore", "--to", (moment - timedelta(days=1)).isoformat())
    assert code == 1
    assert "no base backup" in out

    code, out = await bourse(root, "restore", "--to", moment.isoformat())
    assert code == 0, out
    assert "previous cluster is kept" in out
    await asyncio.to_thread(pg.start)
    assert sql(pg, "SELECT string_agg(n::text, ',' ORDER BY n) FROM ledger_note") == "1,2"
    sql(pg, "INSERT INTO ledger_note (n) VALUES (4)")  # promoted: writable
    await asyncio.to_thread(pg.stop)
    kept = [p.name for p in (root / "pg").iterdir() if p.name.startswith("data.before-restore")]
    assert len(kept) == 1

    # To the end of the archive: along the newest timeline, the history since that restore,
    # where row 3 was abandoned and row 4 written.
    code, out = await bourse(root, "restore")
    assert code == 0, out
    await asyncio.to_thread(pg.start)
    assert sql(pg, "SELECT string_agg(n::text, ',' ORDER BY n) FROM ledger_note") == "1,2,4"
    await asyncio.to_thread(pg.stop)
