"""Per-request context: services, the caller (resolved lazily, once) and dataloaders."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from models.accounts import ClientInfo, Principal
from models.partners import Caller
from models.services import Services
from resolvers.errors import unauthenticated
from resolvers.hub import Hub
from resolvers.loaders import Loaders

CONSOLE_COOKIE = "bourse_console"


def bearer(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Context:
    def __init__(
        self,
        request: Request | WebSocket,
        response: Response | WebSocket | None,
        services: Services,
        hub: Hub | None = None,
    ) -> None:
        self.request = request
        self.response = response
        self.services = services
        self.hub = hub  # the app's pub/sub hub (subscriptions); None outside the API
        self.connection_params: dict[str, Any] | None = None  # set by graphql-transport-ws
        self._caller: Caller | None = None
        self._loaders: Loaders | None = None

    @property
    def loaders(self) -> Loaders:
        """This request's dataloaders (created on first use)."""
        if self._loaders is None:
            self._loaders = Loaders(self.services)
        return self._loaders

    @property
    def client(self) -> ClientInfo:
        host = self.request.client.host if self.request.client else None
        return ClientInfo(ip=host, user_agent=self.request.headers.get("user-agent"))

    def token(self) -> str | None:
        params = self.connection_params or {}
        token = bearer(params.get("Authorization") or params.get("authorization"))
        if token is None and isinstance(params.get("token"), str):
            token = params["token"] or None
        if token is None:
            token = bearer(self.request.headers.get("authorization"))
        if token is None and self.request.scope["type"] == "http":
            # The staff console (GraphiQL) authenticates with an HttpOnly same-site cookie; never
            # on websockets, whose handshake a hostile page could open with the user's cookies.
            token = self.request.cookies.get(CONSOLE_COOKIE) or None
        return token

    async def caller(self) -> Caller:
        """Who the token speaks for (a session, an API key, a partner app), resolved once."""
        if self._caller is None:
            self._caller = await self.services.partners.caller(self.token())
        return self._caller

    async def principal(self) -> Principal | None:
        return (await self.caller()).principal

    async def require_principal(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise unauthenticated()
        return principal
