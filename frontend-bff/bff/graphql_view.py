"""GraphQL over HTTP and `graphql-transport-ws`, with per-request context and a gated IDE."""

from __future__ import annotations

import json
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, SubscribeMessage

from bff.trusted_documents import DOCUMENT_ID, DocumentGate, refusal
from bourse.settings import Settings
from models.availability import UNAVAILABLE_MESSAGE, is_unavailable
from models.errors import ErrorCode
from models.services import Services
from models.users import STAFF_ROLES
from resolvers.context import Context
from resolvers.execution import SharedData

HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
              415: "UNSUPPORTED_MEDIA_TYPE"}  # fmt: skip


class BourseWebSocketAdapter(ASGIWebSocketAdapter):
    async def send_text(self, text: str) -> None:
        """Text already encoded (a shared event's message), with ``send_json``'s errors."""
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class TrustedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws under the same trusted-document rules as POST /graphql: a socket
    can carry queries and mutations too, so it is no way around them."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            payload = message["payload"]
            data = GraphQLRequestData(
                query=payload.get("query"),
                variables=payload.get("variables"),
                operation_name=payload.get("operationName"),
                extensions=payload.get("extensions"),
                protocol="http",
            )
            gate: DocumentGate = self.context.request.app.state.document_gate
            refused = await gate.admit(data, await self.context.caller())
            if refused is not None:
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [e.formatted for e in refused.errors or ()],
                    }
                )
                return
            payload["query"] = data.query or ""
        await super().handle_subscribe(message)

    async def send_message(self, message: Message) -> None:
        """A shared event's ``next`` (resolvers/execution.py) goes out as the text its
        subscribers share, rendered once, not encoded again for every socket."""
        if message["type"] == "next":
            payload = message["payload"]
            data = payload.get("data")
            if type(data) is SharedData and len(payload) == 1:
                text = data.next_message(message["id"], self.view.encode_json)
                assert isinstance(self.websocket, BourseWebSocketAdapter)
                await self.websocket.send_text(text)
                return
        await super().send_message(message)


class BourseGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TrustedTransportWS
    websocket_adapter_class = BourseWebSocketAdapter

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            # Queries over GET would let a cross-site <img> run them with cookies: POST only.
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            multipart_uploads_enabled=False,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry answers a request it cannot take (bad JSON, no query, a batch, a wrong
        method) in plain text; clients get GraphQL's shape instead: ``errors`` with a code.
        Batches are refused whole (one operation per request: each is rate limited, costed and
        audited on its own)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as e:
            code = HTTP_CODES.get(e.status_code, "BAD_REQUEST")
            error = {"message": e.reason, "extensions": {"code": code}}
            response = JSONResponse({"errors": [error]}, status_code=e.status_code)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> str:
        """Answers and subscription messages encoded by orjson (the same compact JSON as
        Strawberry's ``json.dumps`` with tight separators, about 10x faster on big lists).
        Text, not bytes: a websocket sends bytes as a binary frame. What orjson refuses (an
        integer beyond 64 bits, a non-string key) goes through the standard library."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = request.app.state.services
        return Context(request, response, services, getattr(request.app.state, "hub", None))

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry's parsing, keeping the trusted-document `documentId` it would drop."""
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and request.method == "POST":
            body = await request.get_body()  # Starlette's, read once and kept
            # Parsed a second time only when it may hold the key (written plainly, or with a
            # JSON escape): most requests carry a query; the second parse was 0.6% of a GraphQL
            # placeOrder's CPU in a py-spy profile (bench/graphql_overhead.py).
            if b"documentId" in body or b"\\u" in body:
                raw = self.parse_json(body)
                if isinstance(raw, dict) and "documentId" in raw:
                    data.extensions = {**(data.extensions or {}), DOCUMENT_ID: raw["documentId"]}
        return data

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: Any,
        sub_response: Response,
    ) -> Any:
        """Run only what the trusted-document rules admit (bff/trusted_documents.py)."""
        gate: DocumentGate = request.app.state.document_gate
        if isinstance(request_data, GraphQLRequestData):
            try:
                caller = await context.caller()
            except Exception as exc:
                # The token's lookup runs before the schema (the gate needs the caller), so
                # the fields' SERVICE_UNAVAILABLE mapping (resolvers/availability.py) does not
                # see it: a token not in this process's cache while PostgreSQL is down or its
                # pool is exhausted would otherwise be a 500.
                if not is_unavailable(exc):
                    raise
                return refusal(ErrorCode.SERVICE_UNAVAILABLE.value, UNAVAILABLE_MESSAGE)
            refused = await gate.admit(request_data, caller)
            if refused is not None:
                return refused
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL is for staff: open in development, otherwise SUPPORT/ADMIN only."""
        if not self.settings.development:
            context = Context(request, None, request.app.state.services)
            principal = await context.principal()
            if principal is None:
                return RedirectResponse("/console/login", status_code=303)
            if principal.role not in STAFF_ROLES:
                return Response("The GraphQL console is for support staff.", status_code=403)
        return await super().render_graphql_ide(request)
