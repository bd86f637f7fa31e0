"""Sign-in page for the staff GraphQL console (GraphiQL).

Browsers cannot attach an Authorization header to a page load, so staff sign in here and get an
HttpOnly, SameSite=Strict cookie scoped to /graphql that carries an ordinary access token.

Login CSRF (a hostile page posting its own credentials so that staff work in the attacker's
session) is refused twice over: the form carries a token that must equal the one in a
SameSite=Strict cookie set with the form (double submit: a cross-site POST carries no cookie),
and a POST whose `Origin` is not this site is refused. Cookies are `Secure` over HTTPS, which
behind a TLS-terminating proxy means `BOURSE_TRUSTED_PROXIES` names it (X-Forwarded-Proto), or
whenever the public URL is https.
"""

from __future__ import annotations

import secrets
from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from models.accounts import ClientInfo
from models.errors import DomainError
from models.services import Services
from models.users import STAFF_ROLES
from resolvers.context import CONSOLE_COOKIE

MAX_FORM_BYTES = 4096
CSRF_COOKIE = "bourse_console_csrf"

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Bourse staff console</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}}
label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.4rem}}
.err{{color:#b00020}}</style></head><body>
<h1>Bourse staff console</h1>{error}
<form method="post" action="/console/login">
<input type="hidden" name="csrf" value="{csrf}">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required>
</label>
<label>Authenticator code (if enabled) <input name="otp" inputmode="numeric"></label>
<button type="submit">Sign in</button></form></body></html>"""


def _secure(request: Request, services: Services) -> bool:
    return request.url.scheme == "https" or services.settings.link_base_url().startswith("https://")


def _page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The form, with a fresh CSRF token in it and in its cookie."""
    csrf = secrets.token_urlsafe(32)
    block = f'<p class="err">{escape(error)}</p>' if error else ""
    response = HTMLResponse(PAGE.format(error=block, csrf=csrf), status_code=status)
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request, request.app.state.services),
    )
    return response


def _same_site(request: Request, form: dict[str, str]) -> bool:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and secrets.compare_digest(cookie, form.get("csrf", ""))


async def console_login(request: Request) -> Response:
    if request.method == "GET":
        return _page(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _page(request, "Form too large.", 413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
    if not _same_site(request, form):
        return _page(request, "This sign-in form has expired: please sign in again.", 403)
    services: Services = request.app.state.services
    client = ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    try:
        tokens = await services.accounts.login(
            form.get("email", ""), form.get("password", ""), form.get("otp") or None, client
        )
    except DomainError as exc:
        return _page(request, exc.problems[0].message, 401)
    if tokens.user.role not in STAFF_ROLES:
        return _page(request, "The console is for support staff.", 403)
    response = RedirectResponse("/graphql", status_code=303)
    response.set_cookie(
        CONSOLE_COOKIE,
        tokens.access_token,
        max_age=services.settings.access_token_ttl_seconds,
        path="/graphql",
        httponly=True,
        samesite="strict",
        secure=_secure(request, services),
    )
    response.delete_cookie(CSRF_COOKIE, path="/console")
    return response
