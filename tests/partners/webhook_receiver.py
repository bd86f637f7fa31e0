"""A partner's webhook receiver for tests: a real HTTP server on a loopback port that checks
every request the way API.md section 12 tells partners to (written from the contract, not from
the platform's code): `Bourse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
under the endpoint's secret, `t` within five minutes, the body's `id` equal to
`Bourse-Event-Id`; and deduplicates by event id, as a receiver must under at-least-once.

`fail[path] = n` answers 503 to the first `n` requests per event on that path (a forced retry);
`status[path]` answers that status to everything (a receiver that is down or refuses)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.server import free_port

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Whether `header` signs `body` under `secret` with a fresh timestamp."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, given)


@dataclass
class Hit:
    path: str
    event_id: str
    attempt: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.secrets: dict[str, str] = {}
        self.fail: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.hits: list[Hit] = []
        self.accepted: dict[str, dict[str, Hit]] = {}  # path -> event id -> first accepted
        self.duplicates: Counter[tuple[str, str]] = Counter()
        self._tries: Counter[tuple[str, str]] = Counter()
        app = Starlette(routes=[Route("/hooks/{name}", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        )
        self._task: asyncio.Task[None] | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    async def _hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        event_id = request.headers.get("bourse-event-id", "")
        secret = self.secrets.get(name, "")
        ok = verify(secret, request.headers.get("bourse-signature", ""), body)
        try:
            ok = ok and json.loads(body)["id"] == event_id
        except (ValueError, KeyError):
            ok = False
        key = (name, event_id)
        self._tries[key] += 1
        if not ok:
            answer = 400
        elif name in self.status:
            answer = self.status[name]
        elif self._tries[key] <= self.fail.get(name, 0):
            answer = 503
        else:
            answer = 200
        hit = Hit(
            name, event_id, request.headers.get("bourse-delivery-attempt", ""),
            dict(request.headers), body, ok, answer,
        )  # fmt: skip
        self.hits.append(hit)
        if answer == 200:
            seen = self.accepted.setdefault(name, {})
            if event_id in seen:
                self.duplicates[key] += 1
            else:
                seen[event_id] = hit
        return Response(status_code=answer)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The events accepted on `name`, each once, in arrival order."""
        return [h.event for h in self.accepted.get(name, {}).values()]

    def types(self, name: str) -> list[str]:
        return [str(e["type"]) for e in self.events(name)]

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
