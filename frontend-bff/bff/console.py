"""Sign-in page for the staff GraphQL console (GraphiQL).

Browsers cannot attach an Authorization header to a page load, so staff sign in here and get an
HttpOnly, SameSite=Strict cookie scoped to /graphql that carries an ordinary access token.
"""

from __future__ import annotations

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

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Bourse staff console</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}}
label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.4rem}}
.err{{color:#b00020}}</style></head><body>
<h1>Bourse staff console</h1>{error}
<form method="post" action="/console/login">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required>
</label>
<label>Authenticator code (if enabled) <input name="otp" inputmode="numeric"></label>
<button type="submit">Sign in</button></form></body></html>"""


def _page(error: str | None = None, status: int = 200) -> HTMLResponse:
    block = f'<p class="err">{escape(error)}</p>' if error else ""
    return HTMLResponse(PAGE.format(error=block), status_code=status)


async def console_login(request: Request) -> Response:
    if request.method == "GET":
        return _page()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _page("Form too large.", 413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
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
        return _page(exc.problems[0].message, 401)
    if tokens.user.role not in STAFF_ROLES:
        return _page("The console is for support staff.", 403)
    response = RedirectResponse("/graphql", status_code=303)
    response.set_cookie(
        CONSOLE_COOKIE,
        tokens.access_token,
        max_age=services.settings.access_token_ttl_seconds,
        path="/graphql",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
