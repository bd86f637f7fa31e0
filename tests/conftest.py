"""Shared test fixtures: real PostgreSQL, Redis and S3, never stand-ins.

Servers come from DATABASE_URL / REDIS_URL (and AWS_ENDPOINT_URL_S3 with credentials) when set,
otherwise from the embedded launcher under ./var/test (started once per run, stopped at the
end). Each run creates its own database (and drops it afterwards), uses its own Redis key prefix
and its own S3 bucket (both deleted afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bourse.runtime import ServiceUrls, service_urls
from bourse.settings import Settings
from models.storage import ObjectStore
from tests.support.databases import create_database, drop_database, with_database
from tests.support.server import Api, free_port, running_api
from tests.support.smtp import SmtpServer
from workers.jobs import build_worker

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def servers() -> Iterator[ServiceUrls]:
    base = Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        s3_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None,
        var_dir=Path("var/test"),
    )
    with service_urls(base) as urls:
        yield urls


@pytest.fixture(scope="session")
def redis_url(servers: ServiceUrls) -> str:
    return servers.redis_url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix unique to one test, so tests never see each other's keys; whatever the
    test left under it is deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def database_url(servers: ServiceUrls) -> AsyncIterator[str]:
    """A fresh database for this test run, migrated to head, dropped at the end."""
    name = f"bourse_test_{RUN_ID}"
    await create_database(servers.database_url, name)
    url = with_database(servers.database_url, name)
    try:
        from bourse.migrate import upgrade_async

        await upgrade_async(url)
        yield url
    finally:
        await drop_database(servers.database_url, name)


@pytest.fixture(scope="session")
def run_prefix() -> str:
    return f"test-{RUN_ID}:"


@pytest.fixture(scope="session")
async def redis_cleanup(redis_url: str, run_prefix: str) -> AsyncIterator[None]:
    yield
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{run_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def s3_bucket(servers: ServiceUrls) -> AsyncIterator[Settings]:
    """The run's own bucket on the real S3 endpoint (embedded SeaweedFS unless configured),
    emptied and deleted at the end. Yields the S3 part of the settings."""
    s3 = servers.apply(
        Settings(
            s3_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None,
            s3_bucket=f"bourse-test-{RUN_ID}",
        )
    )
    store = ObjectStore(s3)
    await store.ensure_bucket()
    try:
        yield s3
    finally:
        await store.delete_everything()


@pytest.fixture(scope="session")
def base_settings(
    database_url: str,
    redis_url: str,
    run_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    redis_cleanup: None,
    s3_bucket: Settings,
) -> Settings:
    """Settings for the app under test: the run's database, key prefix and bucket, test SMTP
    unset."""
    return Settings(
        s3_endpoint_url=s3_bucket.s3_endpoint_url,
        s3_bucket=s3_bucket.s3_bucket,
        s3_region=s3_bucket.s3_region,
        s3_access_key_id=s3_bucket.s3_access_key_id,
        s3_secret_access_key=s3_bucket.s3_secret_access_key,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=run_prefix,
        env="test",
        var_dir=tmp_path_factory.mktemp("var"),
        secret_key="test-secret-key-" + RUN_ID,
        login_lockout_seconds=2,
        login_failure_window_seconds=60,
        # Tests write candles at fixed past dates; the worker's retention job must not drop
        # them mid-run (retention is tested explicitly, tests/market/test_history.py).
        candles_retention_1m_days=0,
        candles_retention_5m_days=0,
        # The whole suite is one address and a few users hammering: the limiter still runs on
        # every mutation (the per-user count), at limits no test reaches; its own test sets
        # small ones (tests/security/test_mutation_rate_limits.py).
        mutations_per_minute_per_user=100_000,
        mutations_per_minute_per_ip=0,
        # Webhook retries within seconds (tests/partners/test_webhooks.py): every sender of the
        # run (the session's job worker, a stack's) retries alike.
        webhook_retry_base_seconds=0.3,
        webhook_max_attempts=4,
        webhook_poll_seconds=0.2,
    )


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(base_settings: Settings, smtp: SmtpServer) -> Settings:
    return base_settings.model_copy(update={"smtp_url": smtp.url})


@pytest.fixture(scope="session")
async def worker(settings: Settings) -> AsyncIterator[None]:
    """The arq worker (email and other jobs), running in the test's event loop."""
    assert settings.redis_url
    w = build_worker(settings, settings.redis_url)
    task = asyncio.create_task(w.async_run())
    try:
        yield
    finally:
        # Let jobs in flight finish (notification emails of the last tests' deposits): arq's
        # close() cancels them and re-raises the cancellation from its gather.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while any(not t.done() for t in w.tasks.values()) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        with contextlib.suppress(asyncio.CancelledError):
            await w.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[Api]:
    async with running_api(settings) as client:
        yield client
