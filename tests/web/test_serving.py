"""The BFF serves the web client: deep links get index.html, hashed assets are cached for good,
the API's paths are never shadowed, every page carries the strict CSP, and without a build the
page says how to build the app while the API answers as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bff.app import create_app
from bourse.settings import Settings


def _dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "icons").mkdir()
    script = '<script type="module" src="/assets/app-1a2b.js"></script>'
    (dist / "index.html").write_text(f"<!doctype html>{script}")
    (dist / "assets" / "app-1a2b.js").write_text("console.log('app')")
    (dist / "sw.js").write_text("self.addEventListener('fetch', () => {})")
    (dist / "manifest.webmanifest").write_text('{"name": "Bourse"}')
    (dist / "icons" / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return dist


@asynccontextmanager
async def _client(settings: Settings, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.database_url
    assert settings.redis_url
    app = create_app(settings, settings.database_url, settings.redis_url, web_dist=dist)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        yield client


@pytest.fixture
async def web(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(settings, _dist(tmp_path)) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/orders", "/asset/BTC-USD", "/reset-password?token=abc"])
async def test_client_routes_get_the_app_with_a_strict_csp(
    web: httpx.AsyncClient, path: str
) -> None:
    r = await web.get(path)
    assert r.status_code == 200
    assert "/assets/app-1a2b.js" in r.text
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "connect-src 'self' ws://127.0.0.1 wss://127.0.0.1" in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_hashed_assets_are_cached_for_a_year(web: httpx.AsyncClient) -> None:
    r = await web.get("/assets/app-1a2b.js")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-security-policy" in r.headers
    assert (await web.get("/assets/gone-0000.js")).status_code == 404


async def test_service_worker_and_manifest_are_revalidated(web: httpx.AsyncClient) -> None:
    sw = await web.get("/sw.js")
    assert sw.status_code == 200
    assert sw.headers["cache-control"] == "no-cache"
    assert sw.headers["content-type"].startswith("text/javascript")
    manifest = await web.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert (await web.get("/icons/icon-192.png")).status_code == 200
    assert (await web.get("/missing.png")).status_code == 404
    # Never a file outside the build.
    assert (await web.get("/..%2f..%2fpyproject.toml")).status_code == 404


async def test_api_paths_are_never_the_app(web: httpx.AsyncClient) -> None:
    health = await web.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    graphql = await web.post("/graphql", json={"query": "{ __typename }"})
    assert graphql.json() == {"data": {"__typename": "Query"}}
    login = await web.get("/console/login")
    assert "/assets/app-1a2b.js" not in login.text
    for path in ("/console/elsewhere", "/graphql/x", "/api/v1/orders", "/readyz/x"):
        r = await web.get(path)
        assert r.status_code == 404, path
        assert "/assets/app-1a2b.js" not in r.text, path


async def test_without_a_build_the_page_says_how_to_build(
    settings: Settings, tmp_path: Path
) -> None:
    async with _client(settings, tmp_path / "nothing") as client:
        r = await client.get("/orders")
        assert r.status_code == 503
        assert "Node.js 20" in r.text
        assert "npm ci" in r.text
        assert (await client.get("/assets/app.js")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
