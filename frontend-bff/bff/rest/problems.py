"""Errors as RFC 9457 problem details (`application/problem+json`), with the GraphQL codes.

`code` is the same string GraphQL puts in `errors[].code` / `extensions.code`; `type` is a URN
naming it; `errors` lists every problem of a `DomainError` (field, code, message). Status: 400
for a request the API cannot read (shape, types), 401 without a valid credential, 403 when the
role or the credential's scopes do not allow it, 404 for what does not exist (another user's
objects included), 409 for conflicts (taken names, a reused key), 422 for a rule the request
breaks (insufficient funds, a closed market), 429 past a rate limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from models.errors import DomainError, ErrorCode

MEDIA_TYPE = "application/problem+json"

_STATUS: dict[str, int] = {
    "INVALID_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "INVALID_CREDENTIALS": 401,
    "OTP_REQUIRED": 401,
    "INVALID_OTP": 401,
    "FORBIDDEN": 403,
    "REAUTHENTICATION_REQUIRED": 403,
    "NOT_FOUND": 404,
    "USERNAME_TAKEN": 409,
    "EMAIL_TAKEN": 409,
    "DUPLICATE_CLIENT_ORDER_ID": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "NOT_CANCELLABLE": 409,
    "ACCOUNT_LOCKED": 423,
    "RATE_LIMITED": 429,
}
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Unprocessable request",
    423: "Locked",
    429: "Too many requests",
}


class ProblemItem(BaseModel):
    field: str | None = None
    code: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description='"urn:bourse:error:<code>"')
    title: str
    status: int
    detail: str
    code: str = Field(description="The same code GraphQL answers with.")
    errors: list[ProblemItem] = Field(default_factory=list)


def status_of(code: str) -> int:
    return _STATUS.get(code, 422)


class ProblemError(Exception):
    """Raised anywhere in a route: answered as a problem."""

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.items = [ProblemItem(field=field, code=code, message=detail)]

    @classmethod
    def of(cls, exc: DomainError) -> ProblemError:
        first = exc.problems[0]
        error = cls(first.code.value, first.message, field=first.field)
        error.items = [
            ProblemItem(field=p.field, code=p.code.value, message=p.message) for p in exc.problems
        ]
        return error


def response(error: ProblemError, headers: dict[str, str] | None = None) -> JSONResponse:
    status = status_of(error.code)
    body = Problem(
        type=f"urn:bourse:error:{error.code}",
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=error.detail,
        code=error.code,
        errors=error.items,
    )
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="bourse"')
    return JSONResponse(body.model_dump(), status_code=status, media_type=MEDIA_TYPE, headers=extra)


def invalid_input(errors: list[dict[str, Any]]) -> ProblemError:
    """FastAPI's request validation errors, as one INVALID_INPUT problem."""
    error = ProblemError(ErrorCode.INVALID_INPUT.value, "The request does not match the API.")
    error.items = [
        ProblemItem(
            field=".".join(
                str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header")
            )
            or None,
            code=ErrorCode.INVALID_INPUT.value,
            message=str(e.get("msg", "invalid"))[:200],
        )
        for e in errors[:20]
    ]
    return error


RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "description": title,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, title in _TITLES.items()
}
"""Every route documents every problem status (schemathesis checks the answers against it)."""
