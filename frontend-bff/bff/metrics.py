"""`GET /metrics`: the Prometheus exposition of every platform process (bourse/metrics.py).

Operational data (volumes, error rates, lags) is not for the public: served to loopback
clients (a Prometheus or agent on the machine), or to a scraper presenting
`Authorization: Bearer <BOURSE_METRICS_TOKEN>` when that is set; anyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bourse import metrics
from models.services import Services


def _allowed(request: Request, token: str | None) -> bool:
    if token:
        sent = request.headers.get("authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    if not _allowed(request, services.settings.metrics_token):
        return PlainTextResponse("Not Found", status_code=404)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def routes() -> list[Route]:
    return [Route("/metrics", serve_metrics)]
