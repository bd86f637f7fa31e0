"""Pure ASGI middleware: request bodies over `BOURSE_HTTP_MAX_BODY_BYTES` get 413.

A GraphQL document is capped at 2,000 tokens, but the server used to read any body whole before
looking at it (a 10 MB body ran, issue 17). A declared Content-Length over the limit is refused
before the body is read; a chunked body is counted as it arrives and cut off at the limit.
A path prefix may have its own limit (`overrides`: support attachments, up to 10 MB).
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_max = max_bytes
        self.overrides = overrides or {}  # path prefix -> its own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = next(
            (n for prefix, n in self.overrides.items() if path.startswith(prefix)),
            self.default_max,
        )
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(scope, receive, send, limit)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = PlainTextResponse(f"Request body over {limit} bytes.", status_code=413)
        await response(scope, receive, send)
