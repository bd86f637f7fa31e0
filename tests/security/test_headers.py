"""Security headers on API responses, and no `server: uvicorn`."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bff.security_headers import SecurityHeadersMiddleware
from bourse.process import uvicorn_config
from bourse.settings import Settings
from tests.support.server import Api


async def test_api_responses_carry_security_headers(api: Api) -> None:
    for response in (
        await api.http.get("/healthz"),
        await api.post("{ __typename }"),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["content-security-policy"] == "frame-ancestors 'none'"
        assert headers["x-frame-options"] == "DENY"


def test_servers_do_not_announce_themselves(settings: Settings) -> None:
    assert uvicorn_config(object(), settings).server_header is False


async def test_the_web_client_keeps_its_own_policy() -> None:
    async def page(request: Request) -> Response:
        csp = request.query_params.get("csp")
        return Response("ok", headers={"content-security-policy": csp} if csp else None)

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/{path:path}", page)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for path in ("/", "/assets/app.js"):
            headers = (await http.get(path)).headers
            assert "content-security-policy" not in headers
            assert headers["x-content-type-options"] == "nosniff"
        own = (await http.get("/orders", params={"csp": "default-src 'self'"})).headers
        assert own["content-security-policy"] == "default-src 'self'"
