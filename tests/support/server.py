"""The app under test, served by a real uvicorn on a free loopback port, plus small clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from bff.app import create_app
from bourse.process import ApiServer, uvicorn_config
from bourse.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """A GraphQL client speaking to a live server over HTTP and websockets."""

    def __init__(
        self, base_url: str, http: httpx.AsyncClient, app: Starlette | None = None
    ) -> None:
        self.base_url = base_url
        self.http = http
        self.app = app  # in-process servers: the app (its `state.services`, for test clocks)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @asynccontextmanager
    async def ws(
        self, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> AsyncIterator[ClientConnection]:
        url = self.base_url.replace("http://", "ws://") + "/graphql"
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers=headers,
        ) as conn:
            await conn.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
            ack = json.loads(await asyncio.wait_for(conn.recv(), 5))
            assert ack["type"] == "connection_ack", ack
            yield conn

    @staticmethod
    async def ws_execute(
        conn: ClientConnection,
        query: str,
        variables: dict[str, Any] | None = None,
        op_id: str = "1",
    ) -> dict[str, Any]:
        """Run one operation over graphql-transport-ws and return its single result."""
        await conn.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        while True:
            msg = json.loads(await asyncio.wait_for(conn.recv(), 10))
            if msg.get("id") != op_id:
                continue
            if msg["type"] == "next":
                result: dict[str, Any] = msg["payload"]
                return result
            if msg["type"] == "error":
                return {"errors": msg["payload"]}
            raise AssertionError(f"unexpected message {msg}")


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[Api]:
    assert settings.database_url
    assert settings.redis_url
    port = free_port()
    app = create_app(settings, settings.database_url, settings.redis_url)
    # Served exactly as `bourse up` serves (no proxy headers trusted, the same websockets).
    config = uvicorn_config(app, settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    server = ApiServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    base = f"{settings.scheme}://127.0.0.1:{port}"
    # Over TLS the certificate is the test's own (self-signed: it is its own authority).
    verify: str | bool = str(settings.tls_certfile) if settings.tls_certfile else True
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, verify=verify) as http:
            yield Api(base, http, app)
    finally:
        server.should_exit = True
        await task
