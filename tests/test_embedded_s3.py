"""bourse.embedded.s3: a real SeaweedFS under a private data root (started, reused, adopted and
stopped like PostgreSQL and Redis), serving private objects to signed requests only."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bourse.embedded import EmbeddedS3, embedded_services
from bourse.runtime import ServiceUrls, service_urls
from bourse.settings import Settings
from models.storage import ObjectStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        EmbeddedS3(tmp_path).stop(force=True)


def listening(url: str) -> bool:
    port = httpx.URL(url).port
    assert port is not None
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def store_for(urls: ServiceUrls, bucket: str = "bourse-embedded-test") -> ObjectStore:
    return ObjectStore(urls.apply(Settings(s3_bucket=bucket)))


def test_objects_survive_a_restart_and_stay_private(root: Path) -> None:
    settings = Settings(database_url="postgresql://x/y", redis_url="redis://x/0", var_dir=root)
    with service_urls(settings) as urls:
        assert urls.s3 is not None
        assert urls.s3.endpoint_url.startswith("http://127.0.0.1:")
        store = store_for(urls)
        asyncio.run(store.ensure_bucket())
        asyncio.run(store.put("a/statement.pdf", b"%PDF-1.4 kept", "application/pdf"))
        first = urls.s3.endpoint_url
        # Private: an unsigned read is refused, a presigned one works.
        assert httpx.get(f"{first}/bourse-embedded-test/a/statement.pdf").status_code == 403
        signed = store.download_url("a/statement.pdf", "statement.pdf", "application/pdf")
        assert httpx.get(signed).content == b"%PDF-1.4 kept"
        # Every listener is on loopback (SeaweedFS starts its parts one after the other: a
        # loaded machine may take a few seconds to open the last one).
        ports = [int(p) for p in (root / "s3" / "ports").read_text().split()]
        for port in ports:
            deadline = time.monotonic() + 20
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
                time.sleep(0.1)
    assert not listening(first)
    assert oct((root / "s3" / "s3.json").stat().st_mode & 0o777) == "0o600"

    with service_urls(settings) as again:
        assert again.s3 is not None
        assert again.s3.endpoint_url == first  # the same ports, reused
        assert asyncio.run(store_for(again).get("a/statement.pdf")) == b"%PDF-1.4 kept"
    assert not listening(first)


def test_configured_s3_starts_nothing(root: Path) -> None:
    settings = Settings(
        database_url="postgresql://x/y", redis_url="redis://x/0", var_dir=root,
        s3_endpoint_url="http://127.0.0.1:1", s3_bucket="elsewhere",
    )  # fmt: skip
    with service_urls(settings) as urls:
        assert urls.s3 is None
    assert not (root / "s3").exists()


def test_second_start_reuses_and_a_dead_starter_is_adopted(root: Path) -> None:
    first = EmbeddedS3(root)
    url = first.start()
    second = EmbeddedS3(root)
    assert second.start() == url
    assert not second.owns_server
    second.stop()
    assert listening(url), "a non-owner's stop() leaves the server running"
    first.stop()
    assert not listening(url)
    # A stale pid file (the server was SIGKILLed) does not block the next start.
    third = EmbeddedS3(root)
    url = third.start()
    pid = int((root / "s3" / "weed.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while listening(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    fourth = EmbeddedS3(root)
    assert fourth.start().startswith("http://127.0.0.1:")
    assert fourth.owns_server
    fourth.stop()


def test_embedded_services_start_s3_only_when_asked(root: Path) -> None:
    with embedded_services(root, postgres=False, redis=False, s3=True) as urls:
        assert urls.database_url is None
        assert urls.s3_url is not None
        assert urls.s3_credentials is not None
        assert listening(urls.s3_url)
