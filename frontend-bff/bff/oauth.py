"""OAuth2 endpoints for partner apps: `POST /oauth/token` and the consent page's route.

The token endpoint follows RFC 6749 section 3.2: form-encoded parameters, client
authentication by HTTP Basic (`client_secret_basic`) or in the body (`client_secret_post`),
answers with `Cache-Control: no-store`, errors as `{"error", "error_description"}` (section
5.2; 401 for a failed client authentication). Grants: `client_credentials` and
`authorization_code` with PKCE; the rules are `models.partners.oauth`'s.
`GET /oauth/authorize` is the web client's consent screen (the SPA reads the query and asks
the API through `oauthAuthorization` / `approveOAuthAuthorization`).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bff.webapp import WebApp
from models.partners.oauth import IssuedToken, OAuthError
from models.partners.scopes import oauth_scope_string
from models.services import Services

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"


def _error(exc: OAuthError, basic: bool) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="bourse"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


def _client(request: Request, form: dict[str, str]) -> tuple[str, str | None, bool]:
    """(client id, secret, whether HTTP Basic was used)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from None
        basic_id, sep, basic_secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials.", 401)
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before Base64.
        return unquote(basic_id), unquote(basic_secret), True
    client_id = form.get("client_id")
    if not client_id:
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    return client_id, form.get("client_secret"), False


def _issued(token: IssuedToken) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "scope": oauth_scope_string(token.scopes),
        },
        headers=NO_STORE,
    )


async def token(request: Request) -> Response:
    services: Services = request.app.state.services
    basic = False
    try:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            raise OAuthError("invalid_request", f"Send the parameters as {FORM}.")
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form: dict[str, str] = {}
        for key, value in pairs:
            if key in form:  # section 3.2: parameters must not be repeated
                raise OAuthError("invalid_request", f"{key} is repeated.")
            form[key] = value
        client_id, secret, basic = _client(request, form)
        apps = services.partners.apps
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return _issued(await apps.client_credentials(client_id, secret, form.get("scope")))
        if grant == "authorization_code":
            code = form.get("code")
            if not code:
                raise OAuthError("invalid_request", "code is required.")
            issued = await apps.exchange_code(
                client_id, secret, code, form.get("redirect_uri"), form.get("code_verifier")
            )
            return _issued(issued)
        raise OAuthError("unsupported_grant_type", "Use client_credentials or authorization_code.")
    except OAuthError as exc:
        return _error(exc, basic)


def routes(webapp: WebApp) -> list[BaseRoute]:
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/authorize", webapp.app_page, methods=["GET", "HEAD"]),
    ]
