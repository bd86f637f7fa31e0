"""OAuth2 for partner apps (RFC 6749, PKCE per RFC 7636; issue 18 item 2).

- ADMIN registers an app (`PartnerApps.create`): a client id, a client secret shown once, its
  redirect URIs (exact match, https or loopback http per RFC 8252) and the scopes it may ask for.
- Client credentials: the app authenticates as itself and gets a token acting for nobody:
  market data only (`READ_MARKET`); no customer's data is reachable with it.
- Authorization code with PKCE (S256 only): the customer, signed in to the web client at
  `/oauth/authorize`, approves the app and a subset of its scopes; that consent is a grant row
  (one live per app and customer); the one-time code (5 minutes) is exchanged with the
  verifier and the client secret for an access token bound to the grant. Revoking the grant
  (Settings, "Connected apps") kills every token it issued from the next request on.

Why not Authlib's server: its grant classes call `query_client`, `save_token` and the other
hooks synchronously, while every query here goes through the async pool; and it ships server
integrations for Flask and Django only. The protocol surface used here is small (two grants,
S256, exact redirect matching) and each rule below names the RFC section it follows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import security
from models.accounts import Principal
from models.errors import DomainError, ErrorCode
from models.partners.scopes import ApiScope, parse_scopes
from models.partners.tables import OAuthCode, OAuthGrant, OAuthToken, PartnerApp
from models.users import User
from models.validation import bounded_text

TOKEN_PREFIX = "boa_"
CLIENT_ID_PREFIX = "bpa_"
SECRET_PREFIX = "bps_"
NAME_MAX = 64
MAX_REDIRECT_URIS = 10
# RFC 7636 section 4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def is_oauth_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


def s256(verifier: str) -> str:
    """RFC 7636 section 4.2: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_verifier(value: str) -> bool:
    return 43 <= len(value) <= 128 and set(value) <= _VERIFIER_CHARS


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def printable(value: str, max_len: int) -> bool:
    """Text that can be a lookup key: bounded, no control characters (PostgreSQL refuses NUL)."""
    return len(value) <= max_len and value.isprintable()


def check_redirect_uri(uri: str) -> str:
    if not printable(uri, 2000):
        raise DomainError.one(ErrorCode.INVALID_REDIRECT_URI, "Not a redirect URI.", "redirectUris")
    parts = urlsplit(uri)
    ok = (
        (parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)))
        and bool(parts.netloc)
        and not parts.fragment
        and len(uri) <= 2000
    )
    if not ok:
        raise DomainError.one(
            ErrorCode.INVALID_REDIRECT_URI,
            "Redirect URIs are absolute https URLs (http only on loopback), without a fragment.",
            "redirectUris",
        )
    return uri


class OAuthError(Exception):
    """An OAuth2 error response (RFC 6749 section 5.2): `error` is the registered code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated `/oauth/authorize` request: what the customer is asked to approve."""

    app: PartnerApp
    redirect_uri: str
    scopes: frozenset[ApiScope]
    state: str | None
    code_challenge: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class TokenCaller:
    principal: Principal | None  # None for a client-credentials token (acting for nobody)
    app_id: uuid.UUID
    scopes: frozenset[str]
    requests_per_minute: int


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    grant: OAuthGrant
    app_name: str
    client_id: str


def redirect_with(uri: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


class PartnerApps:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        requests_per_minute: int,
        token_seconds: int,
        code_seconds: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._per_minute = requests_per_minute
        self._token_ttl = timedelta(seconds=token_seconds)
        self._code_ttl = timedelta(seconds=code_seconds)
        self._clock = clock

    # --- registration (ADMIN) ---

    async def create(
        self, name: str, redirect_uris: Iterable[str], scopes: Iterable[str]
    ) -> tuple[PartnerApp, str]:
        label = bounded_text(name, NAME_MAX, "name")
        if not label:
            raise DomainError.one(
                ErrorCode.INVALID_INPUT, f"Name the app (1 to {NAME_MAX} characters).", "name"
            )
        uris = [check_redirect_uri(u) for u in redirect_uris]
        if len(uris) > MAX_REDIRECT_URIS:
            raise DomainError.one(
                ErrorCode.INVALID_REDIRECT_URI, "At most 10 redirect URIs.", "redirectUris"
            )
        granted = parse_scopes(scopes)
        secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
        app = PartnerApp(
            client_id=f"{CLIENT_ID_PREFIX}{secrets.token_hex(10)}",
            name=label,
            secret_hash=security.token_digest(secret),
            redirect_uris=uris,
            scopes=sorted(granted),
            requests_per_minute=self._per_minute,
            created_at=self._clock(),
        )
        async with self._sm.begin() as s:
            s.add(app)
        return app, secret

    async def list_apps(self) -> list[PartnerApp]:
        async with self._sm() as s:
            return list(await s.scalars(select(PartnerApp).order_by(PartnerApp.created_at)))

    async def by_client_id(self, client_id: str) -> PartnerApp | None:
        if not printable(client_id, 40):
            return None
        async with self._sm() as s:
            return await s.scalar(
                select(PartnerApp).where(
                    PartnerApp.client_id == client_id, PartnerApp.revoked_at.is_(None)
                )
            )

    # --- the customer's consent (authorization endpoint, RFC 6749 section 4.1.1) ---

    async def authorization_request(
        self,
        client_id: str,
        redirect_uri: str,
        scope: str | None,
        state: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> AuthorizationRequest:
        """Validate a request. An unknown client or redirect URI is shown to the customer,
        never redirected to (section 4.1.2.1: that would be an open redirector)."""
        app = await self.by_client_id(client_id)
        if app is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "Unknown app.", "clientId")
        if redirect_uri not in app.redirect_uris:
            raise DomainError.one(
                ErrorCode.INVALID_REDIRECT_URI,
                "This redirect URI is not registered for the app.",
                "redirectUri",
            )
        requested = parse_scopes(scope.split() if scope else app.scopes, "scope")
        if not requested <= set(app.scopes):
            raise DomainError.one(
                ErrorCode.INVALID_SCOPE, "The app asked for scopes it may not have.", "scope"
            )
        if (
            code_challenge_method != "S256"
            or not code_challenge
            or len(code_challenge) != 43
            or not set(code_challenge) <= _VERIFIER_CHARS
        ):
            raise DomainError.one(
                ErrorCode.INVALID_INPUT,
                "PKCE is required: code_challenge with code_challenge_method=S256.",
                "codeChallenge",
            )
        return AuthorizationRequest(app, redirect_uri, requested, state, code_challenge)

    async def approve(self, user_id: uuid.UUID, request: AuthorizationRequest) -> str:
        """Record the consent and return where to send the browser (with the code)."""
        code = secrets.token_urlsafe(32)
        now = self._clock()
        scopes = sorted(request.scopes)
        async with self._sm.begin() as s:
            grant_id = await s.scalar(
                insert(OAuthGrant)
                .values(
                    id=uuid.uuid4(),
                    app_id=request.app.id,
                    user_id=user_id,
                    scopes=scopes,
                    created_at=now,
                )
                .on_conflict_do_update(
                    index_elements=[OAuthGrant.app_id, OAuthGrant.user_id],
                    index_where=OAuthGrant.revoked_at.is_(None),
                    set_={"scopes": scopes},
                )
                .returning(OAuthGrant.id)
            )
            assert grant_id is not None
            s.add(
                OAuthCode(
                    code_hash=security.token_digest(code),
                    grant_id=grant_id,
                    redirect_uri=request.redirect_uri,
                    code_challenge=request.code_challenge,
                    expires_at=now + self._code_ttl,
                )
            )
        return redirect_with(request.redirect_uri, code=code, state=request.state)

    @staticmethod
    def denied(request: AuthorizationRequest) -> str:
        return redirect_with(
            request.redirect_uri,
            error="access_denied",
            error_description="The customer declined.",
            state=request.state,
        )

    async def connected_apps(self, user_id: uuid.UUID) -> list[ConnectedApp]:
        async with self._sm() as s:
            rows = await s.execute(
                select(OAuthGrant, PartnerApp.name, PartnerApp.client_id)
                .join(PartnerApp, PartnerApp.id == OAuthGrant.app_id)
                .where(OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None))
                .order_by(OAuthGrant.created_at.desc())
            )
            return [ConnectedApp(g, name, cid) for g, name, cid in rows.all()]

    async def revoke_grant(self, user_id: uuid.UUID, grant_id: uuid.UUID) -> None:
        now = self._clock()
        async with self._sm.begin() as s:
            grant = await s.scalar(
                update(OAuthGrant)
                .where(
                    OAuthGrant.id == grant_id,
                    OAuthGrant.user_id == user_id,
                    OAuthGrant.revoked_at.is_(None),
                )
                .values(revoked_at=now)
                .returning(OAuthGrant.id)
            )
            if grant is None:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such connected app.", "id")
            await s.execute(
                update(OAuthToken)
                .where(OAuthToken.grant_id == grant_id, OAuthToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    # --- the token endpoint (RFC 6749 sections 4.1.3, 4.4, 5) ---

    async def _client(self, s: AsyncSession, client_id: str, secret: str | None) -> PartnerApp:
        if not printable(client_id, 40):
            raise OAuthError("invalid_client", "Client authentication failed.", 401)
        app = await s.scalar(
            select(PartnerApp).where(
                PartnerApp.client_id == client_id, PartnerApp.revoked_at.is_(None)
            )
        )
        expected = app.secret_hash if app is not None else b"\0" * 32
        given = security.token_digest(secret or "")
        if app is None or not secret or not hmac.compare_digest(expected, given):
            raise OAuthError("invalid_client", "Client authentication failed.", 401)
        return app

    async def _issue(
        self, s: AsyncSession, app: PartnerApp, grant_id: uuid.UUID | None, scopes: list[str]
    ) -> IssuedToken:
        token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        now = self._clock()
        s.add(
            OAuthToken(
                token_hash=security.token_digest(token),
                app_id=app.id,
                grant_id=grant_id,
                scopes=scopes,
                created_at=now,
                expires_at=now + self._token_ttl,
            )
        )
        return IssuedToken(token, int(self._token_ttl.total_seconds()), scopes)

    async def client_credentials(
        self, client_id: str, secret: str | None, scope: str | None
    ) -> IssuedToken:
        async with self._sm.begin() as s:
            app = await self._client(s, client_id, secret)
            try:
                wanted = parse_scopes(scope.split(), "scope") if scope else None
            except DomainError as exc:
                raise OAuthError("invalid_scope", exc.problems[0].message) from None
            if wanted is None:
                wanted = frozenset({ApiScope.READ_MARKET})
            if wanted != {ApiScope.READ_MARKET} or ApiScope.READ_MARKET not in app.scopes:
                raise OAuthError(
                    "invalid_scope",
                    "Client credentials act for no customer: only read:market can be granted.",
                )
            return await self._issue(s, app, None, sorted(wanted))

    async def exchange_code(
        self,
        client_id: str,
        secret: str | None,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
    ) -> IssuedToken:
        now = self._clock()
        async with self._sm.begin() as s:
            app = await self._client(s, client_id, secret)
            # Single use, atomically: of two racing exchanges one gets the row.
            row = (
                await s.execute(
                    update(OAuthCode)
                    .where(
                        OAuthCode.code_hash == security.token_digest(code),
                        OAuthCode.used_at.is_(None),
                        OAuthCode.expires_at > now,
                    )
                    .values(used_at=now)
                    .returning(OAuthCode.grant_id, OAuthCode.redirect_uri, OAuthCode.code_challenge)
                )
            ).first()
            invalid = OAuthError("invalid_grant", "The code is invalid, used or expired.")
            if row is None:
                raise invalid
            grant_id, bound_uri, challenge = row
            grant = await s.scalar(
                select(OAuthGrant).where(
                    OAuthGrant.id == grant_id,
                    OAuthGrant.app_id == app.id,
                    OAuthGrant.revoked_at.is_(None),
                )
            )
            if grant is None or redirect_uri != bound_uri:
                raise invalid
            if not verifier or not valid_verifier(verifier):
                raise OAuthError("invalid_grant", "code_verifier is missing or malformed.")
            if not hmac.compare_digest(s256(verifier), challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge.")
            return await self._issue(s, app, grant.id, list(grant.scopes))

    async def authenticate(self, token: str) -> TokenCaller | None:
        now = self._clock()
        async with self._sm() as s:
            found = (
                await s.execute(
                    select(
                        OAuthToken.id,
                        OAuthToken.scopes,
                        PartnerApp.id,
                        PartnerApp.requests_per_minute,
                        OAuthGrant.user_id,
                        OAuthGrant.revoked_at,
                        OAuthToken.grant_id,
                    )
                    .join(PartnerApp, PartnerApp.id == OAuthToken.app_id)
                    .outerjoin(OAuthGrant, OAuthGrant.id == OAuthToken.grant_id)
                    .where(
                        OAuthToken.token_hash == security.token_digest(token),
                        OAuthToken.revoked_at.is_(None),
                        OAuthToken.expires_at > now,
                        PartnerApp.revoked_at.is_(None),
                    )
                )
            ).first()
            if found is None:
                return None
            token_id, scopes, app_id, per_minute, user_id, grant_revoked, grant_id = found
            if grant_id is None:
                return TokenCaller(None, app_id, frozenset(scopes), per_minute)
            if grant_revoked is not None:
                return None
            user = await s.scalar(select(User).where(User.id == user_id))
            if user is None or user.closed_at is not None:
                return None
            await s.execute(
                update(OAuthGrant)
                .where(
                    OAuthGrant.id == grant_id,
                    (OAuthGrant.last_used_at.is_(None))
                    | (OAuthGrant.last_used_at < now - timedelta(seconds=60)),
                )
                .values(last_used_at=now)
            )
            await s.commit()
        principal = Principal(
            user_id=user.id,
            role=user.role,
            session_id=token_id,
            scopes=frozenset(scopes),
            app_id=app_id,
        )
        return TokenCaller(principal, app_id, frozenset(scopes), per_minute)
