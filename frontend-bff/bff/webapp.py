"""The web client: the built single-page app (frontend-bff/web/dist) served at `/`.

Invariants:
- Client routes (`/orders`, `/asset/AAPL`, `/reset-password?token=...`) answer index.html, so
  deep links and reloads work; the API's own paths (`/graphql`, `/healthz`, `/readyz`,
  `/console`, `/api`) are never answered with the app, even when a route for them is missing.
- `/assets/*` files carry a content hash in their names: cached for a year, immutable.
  index.html, the service worker and the manifest are revalidated on every load (`no-cache`), so
  a deploy reaches users on their next visit.
- Every response of the app carries a strict Content-Security-Policy: scripts and styles from
  this origin only (no inline script), connections only to this origin (HTTP and websocket).
- Without a build (no Node.js on the machine), `/` answers a short page saying how to build
  the app (status 503); the API is unaffected.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

#: Paths the app must never shadow: the API, probes, staff console, future REST facade.
RESERVED_PREFIXES = ("graphql", "healthz", "readyz", "console", "api", "oauth", "metrics")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

_HOST_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}$")

_TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bourse: web app not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>The Bourse web app is not built yet</h1>
<p>The API is running: <a href="/graphql">/graphql</a>, <a href="/healthz">/healthz</a>.</p>
<p>The web client needs <strong>Node.js 20 or newer</strong>. Install it, then run
<code>./scripts/up</code> again (it builds the app), or build it by hand:</p>
<pre>cd frontend-bff/web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
</body></html>
"""


def content_security_policy(host: str | None) -> str:
    connect = ["'self'"]
    if host and _HOST_RE.fullmatch(host):
        # 'self' covers same-origin websockets in CSP Level 3; the explicit ws/wss sources keep
        # browsers that predate it working.
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            "worker-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _secure(response: Response, host: str | None, cache: str) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers["Cache-Control"] = cache
    return response


class _HashedAssets(StaticFiles):
    """`/assets/*`: content-hashed files, cached for good."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1") or None
            _secure(response, host, IMMUTABLE)
        return response


class WebApp:
    """The routes serving the built client from `dist` (frontend-bff/web/dist by default)."""

    def __init__(self, dist: Path = DEFAULT_DIST) -> None:
        self.dist = dist.resolve()

    @property
    def built(self) -> bool:
        return (self.dist / "index.html").is_file()

    def routes(self) -> list[BaseRoute]:
        """Add these after every API route: the last one catches every other GET.

        The assets mount exists when the app was built before the server started (scripts/up
        builds first); otherwise `/assets/*` falls through to `page` (404 until built).
        """
        routes: list[BaseRoute] = []
        if (self.dist / "assets").is_dir():
            assets = _HashedAssets(directory=self.dist / "assets")
            routes.append(Mount("/assets", app=assets, name="web-assets"))
        routes.append(Route("/{path:path}", self.page, methods=["GET", "HEAD"], name="web-app"))
        return routes

    def _public_file(self, path: str) -> Path | None:
        """A top-level build file (sw.js, manifest, icons), never outside dist."""
        if not path or path.endswith("/"):
            return None
        candidate = (self.dist / path).resolve()
        if not candidate.is_relative_to(self.dist) or not candidate.is_file():
            return None
        return candidate

    async def app_page(self, request: Request) -> Response:
        """The app itself, for a client route under a reserved prefix (`/oauth/authorize`)."""
        host = request.headers.get("host")
        if not self.built:
            return _secure(HTMLResponse(NOT_BUILT, status_code=503), host, REVALIDATE)
        return _secure(FileResponse(self.dist / "index.html"), host, REVALIDATE)

    async def page(self, request: Request) -> Response:
        path: str = request.path_params.get("path", "")
        host = request.headers.get("host")
        if path.split("/", 1)[0] in RESERVED_PREFIXES:
            raise HTTPException(404)
        if not self.built:
            if path and path != "index.html" and "." in path.rsplit("/", 1)[-1]:
                return PlainTextResponse("Not Found", status_code=404)
            return _secure(HTMLResponse(NOT_BUILT, status_code=503), host, REVALIDATE)
        file = self._public_file(path)
        if file is not None:
            media = _TYPES.get(file.suffix)
            return _secure(FileResponse(file, media_type=media), host, REVALIDATE)
        if "." in path.rsplit("/", 1)[-1] and path != "index.html":
            # A missing file (an old hashed asset, a typo): a 404, not the app.
            return PlainTextResponse("Not Found", status_code=404)
        return _secure(FileResponse(self.dist / "index.html"), host, REVALIDATE)
