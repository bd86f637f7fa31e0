"""Pure ASGI middleware: security headers on every API response.

`X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` everywhere (and over HTTPS,
directly or behind a trusted TLS-terminating proxy, `Strict-Transport-Security`); for framing,
`Content-Security-Policy: frame-ancestors 'none'` (and the older `X-Frame-Options: DENY`) on API
responses only. The web client (`/`, `/assets/*`, and any response that already carries its own
Content-Security-Policy) keeps the policy the web client sets for itself. The `server: uvicorn`
header is turned off where servers are configured (`bourse.process.uvicorn_config`).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
HSTS = ("strict-transport-security", "max-age=31536000; includeSubDomains")
API_ONLY = {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}


def is_web_client(path: str) -> bool:
    return path == "/" or path.startswith("/assets/")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web_client = is_web_client(scope.get("path", ""))
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if secure:
                    headers.setdefault(*HSTS)
                if not web_client and "content-security-policy" not in headers:
                    for name, value in API_ONLY.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
