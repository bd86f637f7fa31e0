"""The edge: the Starlette application clients talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bff import metrics, oauth, support_files, unsubscribe
from bff.body_limit import BodyLimitMiddleware
from bff.console import console_login
from bff.graphql_view import BourseGraphQL
from bff.health import healthz, readyz
from bff.request_id import RequestIdMiddleware
from bff.rest.app import build_rest, outer_not_found
from bff.revocations import revocations
from bff.security_headers import SecurityHeadersMiddleware
from bff.trusted_documents import DocumentGate, Manifest
from bff.webapp import WebApp
from bourse.settings import Settings
from models.services import open_services
from resolvers.hub import Hub
from resolvers.schema import build_schema


def create_app(
    settings: Settings, database_url: str, redis_url: str, *, web_dist: Path | None = None
) -> Starlette:
    """An app bound to concrete service URLs (resolved by the CLI: env or embedded).

    `web_dist` is the built web client (default: frontend-bff/web/dist).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, database_url, redis_url) as services:
            app.state.services = services
            rest.state.services = services  # the mounted facade has its own app state
            app.state.document_gate = DocumentGate(
                manifest, services.partners.documents, settings.trusted_documents_only
            )
            # One Redis pub/sub connection per API process, shared by every subscription
            # (quotes, order updates); see resolvers/hub.py for why not broadcaster.
            hub = Hub(redis_url, name=f"{settings.redis_prefix}api-hub")
            await hub.start()
            app.state.hub = hub
            try:
                async with revocations(hub, services.accounts.sessions, settings.redis_prefix):
                    yield
            finally:
                await hub.close()

    settings.link_base_url()  # in production without BOURSE_PUBLIC_URL: refuse to start
    schema = build_schema(settings)
    graphql = BourseGraphQL(schema, settings)
    rest = build_rest()
    webapp = WebApp(web_dist) if web_dist else WebApp()
    manifest = Manifest.load(webapp.dist)  # the web client's trusted documents, from its build
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/console/login", console_login, methods=["GET", "POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *metrics.routes(),
            Mount("/api", app=rest),
            *oauth.routes(webapp),
            *support_files.routes(),
            *unsubscribe.routes(),
            # The web client last: it answers every other GET with the app (client routes).
            *webapp.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={404: outer_not_found},
    )
    # Inside the request id (so refusals are logged): a forged Host is refused (400) before
    # any route runs.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts())
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http_max_body_bytes,
        # Support attachments are up to 10 MB (bff/support_files.py).
        overrides={support_files.UPLOAD_PREFIX: support_files.UPLOAD_LIMIT},
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if settings.trusted_proxies:
        # Outermost, so every layer (limits, cookies, logs) sees the client's address and
        # scheme. uvicorn's own middleware, applied here rather than by the server's
        # `proxy_headers` so it holds whatever serves the app.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
