"""Support attachments over plain HTTP (GraphQL bodies are capped at 1 MiB; files go up to 10 MB).

- `POST /support/tickets/{ticket_id}/attachments`: the raw file as the body (any declared type:
  the content decides), `X-Filename` optional (URL-encoded), `Authorization: Bearer` required.
  Answers like a
  mutation: 200 with `{"message": {...}, "errors": []}`, or 200 with `errors` [{field, code,
  message}] (NOT_FOUND, TICKET_CLOSED, ATTACHMENT_TOO_LARGE, UNSUPPORTED_ATTACHMENT,
  RATE_LIMITED), 401 without a valid token.
- `GET /support/attachments/{id}`: the bytes, as a download only (`Content-Disposition:
  attachment`, `X-Content-Type-Options: nosniff`, `Content-Security-Policy: sandbox`), so a file
  is never rendered inline as HTML; 404 when its ticket does not exist for the caller.
The rules (who may, limits, types, audit) are `models.support_desk`'s; this is only the door.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.errors import DomainError
from models.services import Services
from models.support_desk import Viewer
from models.support_files import MAX_ATTACHMENT_BYTES

UPLOAD_PREFIX = "/support/tickets/"
# The HTTP limit leaves 1 MiB of room so that a file just over 10 MB gets the service's
# ATTACHMENT_TOO_LARGE; far larger bodies get 413 before they are read.
UPLOAD_LIMIT = MAX_ATTACHMENT_BYTES + 1024 * 1024


async def _viewer(request: Request, services: Services) -> Viewer | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    principal = await services.accounts.authenticate(header[7:].strip())
    return Viewer(principal.user_id, principal.role) if principal else None


def _unauthenticated() -> JSONResponse:
    return JSONResponse(
        {"errors": [{"field": None, "code": "UNAUTHENTICATED", "message": "Sign in first."}]},
        status_code=401,
    )


async def upload(request: Request) -> Response:
    services: Services = request.app.state.services
    viewer = await _viewer(request, services)
    if viewer is None:
        return _unauthenticated()
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_ATTACHMENT_BYTES:
            break  # enough to know it is too large
    try:
        message = await services.support.send(
            viewer,
            request.path_params["ticket_id"],
            None,
            attachment=(unquote(request.headers.get("x-filename", "")), data),
        )
    except DomainError as exc:
        errors = [{"field": p.field, "code": p.code.value, "message": p.message}
                  for p in exc.problems]  # fmt: skip
        return JSONResponse({"message": None, "errors": errors})
    doc: dict[str, Any] = message.to_doc()
    return JSONResponse({"message": doc, "errors": []})


async def download(request: Request) -> Response:
    services: Services = request.app.state.services
    viewer = await _viewer(request, services)
    if viewer is None:
        return _unauthenticated()
    found = await services.support.attachment(viewer, request.path_params["attachment_id"])
    if found is None:
        return Response("Not found.", status_code=404, media_type="text/plain")
    meta, data = found
    return Response(
        data,
        media_type=meta.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(meta.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


def routes() -> list[Route]:
    return [
        Route("/support/tickets/{ticket_id}/attachments", upload, methods=["POST"]),
        Route("/support/attachments/{attachment_id}", download, methods=["GET"]),
    ]
