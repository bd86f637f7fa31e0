"""A job worker process SIGKILLed while it renders a statement: no document is ever READY
without its object, and the retry (the sweeper's re-enqueue, picked up by another worker)
finishes it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bourse.app.platform import service_env
from bourse.runtime import ServiceUrls
from bourse.settings import Settings
from models.documents import Document, DocumentFormat, DocumentStatus
from models.services import Services, open_services
from tests.accounts.helpers import PASSWORD, unique
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(180)
ROWS = 4000  # enough activity that rendering takes a while


@pytest.fixture
async def isolated(settings: Settings) -> AsyncIterator[Services]:
    """Services on a key prefix (and so a job queue) of this test alone."""
    own = settings.model_copy(
        update={
            "redis_prefix": f"{settings.redis_prefix}kill{uuid.uuid4().hex[:6]}:",
            "document_retry_after_seconds": 0.5,
        }
    )
    assert own.database_url
    assert own.redis_url
    async with open_services(own, own.database_url, own.redis_url, pool_size=2) as services:
        yield services


async def start_worker(services: Services) -> asyncio.subprocess.Process:
    s = services.settings
    urls = ServiceUrls(s.database_url or "", s.redis_url or "", embedded=False)
    env = {
        **os.environ,
        **service_env(s, urls),
        "BOURSE_REDIS_PREFIX": s.redis_prefix,
        "BOURSE_ENV": "test",
        "BOURSE_SECRET_KEY": s.secret_key or "",
        "BOURSE_VAR_DIR": str(s.var_dir),
        "BOURSE_LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.jobs", env=env, stdout=asyncio.subprocess.DEVNULL
    )


async def row(services: Services, doc_id: uuid.UUID) -> Document:
    async with services.sessionmaker() as s:
        found = await s.get(Document, doc_id)
    assert found is not None
    return found


async def test_killed_mid_generation_then_finished_by_the_retry(isolated: Services) -> None:
    services = isolated
    username, email = unique("kill")
    user = await services.accounts.register(username, email, PASSWORD)
    day = datetime.now(UTC).date() - timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    async with services.sessionmaker.begin() as s:
        await s.execute(
            text(
                "INSERT INTO fund_transactions (id, user_id, type, amount, currency, status, "
                "payment_method, idempotency_key, request_fingerprint, created_at, updated_at, "
                "completed_at) SELECT gen_random_uuid(), :u, 'DEPOSIT', 1, 'USD', 'COMPLETED', "
                "'sandbox:bank', 'kill-' || n, 'x', :at, :at, :at "
                "FROM generate_series(1, :rows) AS n"
            ),
            {"u": user.id, "at": at, "rows": ROWS},
        )
    first = await start_worker(services)
    try:
        doc = await services.documents.request_statement(user.id, day, day, DocumentFormat.PDF)
        # The moment the job claims the row (attempts 1), kill its worker.
        await eventually(lambda: row(services, doc.id), lambda d: d.attempts >= 1, timeout=30,
                         interval=0.005, what="the job to start")  # fmt: skip
        first.send_signal(signal.SIGKILL)
        await first.wait()
        store = services.documents.store
        key = f"documents/{user.id}/{doc.id}.pdf"
        after_kill = await row(services, doc.id)
        if after_kill.status is DocumentStatus.READY:  # the job won the race: still consistent
            assert await store.exists(key)
        else:
            assert after_kill.status is DocumentStatus.PENDING
            assert after_kill.object_key is None
            assert not await store.exists(key)
        killed_mid_way = after_kill.status is DocumentStatus.PENDING
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()

    second = await start_worker(services)
    try:
        await asyncio.sleep(0.6)  # older than document_retry_after_seconds
        await services.documents.enqueue_pending()  # what the sweeper cron does
        done = await eventually(lambda: row(services, doc.id),
                                lambda d: d.status is not DocumentStatus.PENDING, timeout=60,
                                what="the retry to finish it")  # fmt: skip
        assert done.status is DocumentStatus.READY
        assert done.object_key == key
        body = await store.get(key)
        assert body.startswith(b"%PDF")
        assert done.size_bytes == len(body)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(second.wait(), 15)
        except TimeoutError:
            second.kill()
            await second.wait()
    assert killed_mid_way, "the worker finished before it was killed: nothing was proven"
