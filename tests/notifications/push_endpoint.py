"""A real Web Push endpoint for tests: an HTTP server that checks what a push service checks
(the VAPID JWT's ES256 signature against the key sent beside it, its audience and expiry) and
decrypts the payload (RFC 8291 aes128gcm, ``http_ece``) with the subscription's private key."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.server import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its key pair and auth secret."""

    path: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)


@dataclass
class Received:
    path: str
    claims: dict[str, Any]
    payload: dict[str, Any]
    headers: dict[str, str]


def verify_vapid(authorization: str, audience: str) -> dict[str, Any]:
    """The JWT's claims if ``vapid t=<jwt>, k=<key>`` is validly signed; AssertionError else."""
    scheme, _, params = authorization.partition(" ")
    assert scheme.lower() == "vapid", authorization
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = parts["t"], parts["k"]
    head, body, signature = token.split(".")
    assert json.loads(unb64url(head))["alg"] == "ES256"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    claims: dict[str, Any] = json.loads(unb64url(body))
    assert claims["aud"] == audience, claims
    assert claims["exp"] > time.time(), claims
    assert str(claims["sub"]).startswith(("mailto:", "https:")), claims
    return claims


class PushEndpoint:
    def __init__(self) -> None:
        self.port = free_port()
        self.browsers: dict[str, Browser] = {}
        self.gone: set[str] = set()  # paths answering 410: the subscription has expired
        self.received: list[Received] = []
        self.refused: list[str] = []
        app = Starlette(routes=[Route("/push/{name}", self._push, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        b = self.browsers[name] = Browser(f"/push/{name}")
        return b

    def endpoint(self, b: Browser) -> str:
        return self.origin + b.path

    async def _push(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name in self.gone:
            return Response(status_code=410)
        try:
            claims = verify_vapid(request.headers["authorization"], self.origin)
            assert request.headers["content-encoding"] == "aes128gcm"
            browser = self.browsers[name]
            plain = http_ece.decrypt(
                await request.body(), private_key=browser.key, auth_secret=browser.auth,
                version="aes128gcm",
            )  # fmt: skip
        except Exception as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=400)
        self.received.append(
            Received(request.url.path, claims, json.loads(plain), dict(request.headers))
        )
        return Response(status_code=201)

    async def __aenter__(self) -> PushEndpoint:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
