"""The REST facade: a FastAPI application mounted at `/api` (API.md section 12, issue 18 item 3).

FastAPI because it writes the OpenAPI 3.1 document from the code (`/api/openapi.json`: the
routes' pydantic shapes, their problem statuses) and serves human docs (`/api/docs`, Swagger UI
from fastapi-offline's bundled files: no CDN, nothing leaves the machine). It is a thin edge:
every route calls the model services the GraphQL resolvers call, under the same permission,
scope and rate-limit rules (`auth.py`), and answers failures as problem details with the
GraphQL codes (`problems.py`). Nothing here holds a rule of its own.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from bff.rest import market, orders, portfolio, transactions, users
from bff.rest.problems import ProblemError, invalid_input, response

DESCRIPTION = """The seed's REST API for third parties, on the same services as GraphQL.

Authenticate with `Authorization: Bearer <token>`: a sign-in token (`POST /api/users/login`),
an API key (created in Settings; scoped READ_MARKET, READ_ACCOUNT, TRADE, FUNDS) or a partner
app's OAuth2 token (`POST /oauth/token`). `{userId}` is always the caller's own. Amounts are
decimal strings. Errors are RFC 9457 problem details whose `code` is the GraphQL error code.
Money-moving POSTs take an `Idempotency-Key` header.
"""


async def outer_not_found(request: Request, exc: Exception) -> Response:
    """The outer app's 404: under /api a problem too (a path the mount's pattern cannot take,
    such as one with an encoded newline, never reaches the facade), plain text elsewhere."""
    if request.url.path == "/api" or request.url.path.startswith("/api/"):
        return response(ProblemError("NOT_FOUND", "No such endpoint."))
    detail = exc.detail if isinstance(exc, HTTPException) else "Not Found"
    return PlainTextResponse(str(detail), status_code=404)


def build_rest() -> FastAPI:
    api = FastAPIOffline(
        title="Bourse REST API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    for module in (users, portfolio, orders, market, transactions):
        api.include_router(module.router)

    @api.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> Response:
        return response(exc)

    @api.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        return response(invalid_input(list(exc.errors())))

    @api.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "NOT_ALLOWED"}.get(exc.status_code, "INVALID_INPUT")
        error = ProblemError(code, str(exc.detail))
        answer = response(error)
        answer.status_code = exc.status_code
        return answer

    return api
