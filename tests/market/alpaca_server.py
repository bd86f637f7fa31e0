"""A local server speaking Alpaca's market-data websocket protocol (v2), from its
documentation (docs.alpaca.markets, "WebSocket Stream"): the greeting, message
authentication within a time limit, subscribe/unsubscribe answered with the whole
subscription, the connection limit, and the documented error codes. The test pushes data
points and disconnects clients at will."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

SYMBOL_RE = re.compile(r"^[A-Z0-9.]{1,12}(/[A-Z]{2,5})?$")
CHANNELS = ("trades", "quotes", "bars")


def error(code: int, msg: str) -> str:
    return json.dumps([{"T": "error", "code": code, "msg": msg}])


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds


@dataclass
class Client:
    ws: ServerConnection
    authenticated: bool = False
    subscriptions: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})


class AlpacaServer:
    def __init__(self, key: str, secret: str, *, auth_timeout: float = 10.0) -> None:
        self.key, self.secret, self.auth_timeout = key, secret, auth_timeout
        self.connection_limit = 1
        self.clients: list[Client] = []
        self.received: list[Any] = []
        self.connects = 0
        self.server: Server | None = None
        self.port = 0
        self.subscribed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    async def __aenter__(self) -> AlpacaServer:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connects += 1
        if len(self.clients) >= self.connection_limit:
            await ws.send(error(406, "connection limit exceeded"))
            await ws.close()
            return
        client = Client(ws)
        self.clients.append(client)
        try:
            await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
            try:
                async with asyncio.timeout(self.auth_timeout):
                    while not client.authenticated:
                        if not await self._on_message(client, await ws.recv()):
                            return
            except TimeoutError:
                await ws.send(error(404, "auth timeout"))
                await ws.close()
                return
            async for raw in ws:
                if not await self._on_message(client, raw):
                    return
        except ConnectionClosed:
            pass
        finally:
            self.clients.remove(client)

    async def _on_message(self, client: Client, raw: Any) -> bool:
        """Answer one client message; False when the connection is to be closed."""
        try:
            msg = json.loads(raw)
        except ValueError:
            await client.ws.send(error(400, "invalid syntax"))
            return True
        self.received.append(msg)
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "auth":
            if client.authenticated:
                await client.ws.send(error(403, "already authenticated"))
            elif msg.get("key") == self.key and msg.get("secret") == self.secret:
                client.authenticated = True
                await client.ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
            else:
                await client.ws.send(error(402, "auth failed"))
                await client.ws.close()
                return False
            return True
        if action in ("subscribe", "unsubscribe"):
            if not client.authenticated:
                await client.ws.send(error(401, "not authenticated"))
                return True
            lists = {c: msg.get(c, []) for c in CHANNELS}
            if not all(
                isinstance(v, list) and all(isinstance(s, str) and SYMBOL_RE.match(s) for s in v)
                for v in lists.values()
            ):
                await client.ws.send(error(400, "invalid syntax"))
                return True
            for channel, symbols in lists.items():
                if action == "subscribe":
                    client.subscriptions[channel] |= set(symbols)
                else:
                    client.subscriptions[channel] -= set(symbols)
            answer = {
                "T": "subscription",
                **{c: sorted(s) for c, s in client.subscriptions.items()},
            }
            await client.ws.send(json.dumps([answer]))
            self.subscribed.set()
            return True
        await client.ws.send(error(400, "invalid syntax"))
        return True

    # ---- what the test does ----

    def subscribers(self, symbol: str) -> list[Client]:
        return [
            c for c in self.clients
            if symbol in c.subscriptions["trades"] or symbol in c.subscriptions["quotes"]
        ]  # fmt: skip

    async def wait_subscribed(self, symbol: str, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.subscribers(symbol):
                await asyncio.sleep(0.02)

    async def push(self, *points: dict[str, Any]) -> None:
        """Data points to every client subscribed to their symbols, as one array."""
        text = json.dumps(list(points))
        for client in {id(c): c for p in points for c in self.subscribers(p["S"])}.values():
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(text)

    async def push_raw(self, text: str) -> None:
        for client in list(self.clients):
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(text)

    async def drop_all(self, code: int | None = None, msg: str = "") -> None:
        """Disconnect every client (after an error message, e.g. 407 slow client)."""
        dropped = list(self.clients)
        for client in dropped:
            if code is None:
                client.ws.transport.abort()  # a dropped line, not a clean close
                continue
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(error(code, msg))
                await client.ws.close()
        async with asyncio.timeout(10):
            while any(c in self.clients for c in dropped):
                await asyncio.sleep(0.01)


def trade(symbol: str, price: str, size: int = 100, at: str | None = None) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "i": 1, "x": "V", "p": float(price), "s": size,
            "c": ["@"], "z": "C", "t": at or now_text()}  # fmt: skip


def quote(symbol: str, bid: str, ask: str) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "bx": "V", "bp": float(bid), "bs": 1, "ax": "V",
            "ap": float(ask), "as": 2, "c": ["R"], "z": "C", "t": now_text()}  # fmt: skip
