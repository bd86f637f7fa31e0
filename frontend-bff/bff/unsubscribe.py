"""The unsubscribe link of notification emails (one per kind, ``workers.notifications``).

- ``GET /notifications/unsubscribe?token=…``: a page with one button; a GET changes nothing
  (mail scanners follow links).
- ``POST /notifications/unsubscribe?token=…``: switches that kind's email off (RFC 8058
  one-click: mail clients POST ``List-Unsubscribe=One-Click`` to the same URL). SECURITY mail
  has no such link and cannot be switched off. The token is the user and kind signed with the
  platform key (``models.notifications.preferences.unsubscribe_token``); a bad one gets 400.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from models.notifications.preferences import read_unsubscribe_token
from models.services import Services

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bourse: email notifications</title></head><body><main>
<h1>Email notifications</h1>{content}</main></body></html>"""


def _page(content: str, status: int = 200) -> HTMLResponse:
    headers = {"Content-Security-Policy": "default-src 'none'; form-action 'self'",
               "Cache-Control": "no-store"}  # fmt: skip
    return HTMLResponse(_PAGE.format(content=content), status_code=status, headers=headers)


def _label(kind: str) -> str:
    return html.escape(kind.replace("_", " ").lower())


async def unsubscribe(request: Request) -> Response:
    services: Services = request.app.state.services
    token = request.query_params.get("token", "")
    secret = services.settings.resolved_secret_key()
    found = read_unsubscribe_token(secret, token)
    if found is None:
        return _page("<p>This link is not valid.</p>", 400)
    kind = found[1].value
    if request.method == "GET":
        return _page(
            f"<p>Stop emails about {_label(kind)} notifications? They stay in your inbox in "
            "the app; you can switch email back on in Settings.</p>"
            f'<form method="post" action="?token={html.escape(token)}">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    await services.notification_preferences.unsubscribe(secret, token)
    return _page(f"<p>You will no longer get {_label(kind)} emails.</p>")


def routes() -> list[Route]:
    return [Route("/notifications/unsubscribe", unsubscribe, methods=["GET", "POST"])]
