"""The webhook sender: a loop in every arq job worker (`bourse up` runs one in-process,
`python -m workers.jobs` more), started with the worker and stopped with it.

Every `webhook_poll_seconds` it claims the due deliveries (`models.webhooks.sender.claim`:
SKIP LOCKED and a lease, so several workers share the work and never send one attempt twice),
POSTs each with httpx (short timeout, no redirects followed, no proxies from the environment),
and records the answer. In production a destination that resolves to a non-public address is
refused before connecting (SSRF).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import httpx
import structlog

from bourse.clock import utcnow
from models.services import Services
from models.webhooks.events import prune
from models.webhooks.sender import Claimed, Outcome, claim, finish, signature
from models.webhooks.service import public_destination

log = structlog.get_logger("workers.webhooks")

BATCH = 20
USER_AGENT = "Bourse-Webhooks/1"


async def post(client: httpx.AsyncClient, item: Claimed, *, production: bool) -> Outcome:
    started = time.monotonic()
    if production and not await public_destination(item.url):
        return Outcome(None, 0, "destination is not a public address")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Bourse-Event-Id": str(item.event_id),
        "Bourse-Event-Type": item.event_type,
        "Bourse-Delivery-Id": str(item.delivery_id),
        "Bourse-Delivery-Attempt": str(item.attempt),
        "Bourse-Timestamp": str(timestamp),
        "Bourse-Signature": signature(item.secret, timestamp, item.body),
    }
    try:
        response = await client.post(item.url, content=item.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(None, elapsed, f"{type(exc).__name__}: {exc}"[:200])
    elapsed = int((time.monotonic() - started) * 1000)
    error = None if response.is_success else f"HTTP {response.status_code}"
    return Outcome(response.status_code, elapsed, error)


async def send_due(services: Services, client: httpx.AsyncClient) -> int:
    """One pass: claim, send concurrently, record; how many were attempted."""
    settings = services.settings
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 10)
    due = await claim(services.sessionmaker, services.fields, utcnow(), limit=BATCH, lease=lease)
    production = settings.env == "production"

    async def one(item: Claimed) -> None:
        outcome = await post(client, item, production=production)
        status = await finish(
            services.sessionmaker,
            item,
            outcome,
            utcnow(),
            max_attempts=settings.webhook_max_attempts,
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_cap_seconds,
        )
        log.info(
            "webhook attempt",
            delivery_id=str(item.delivery_id),
            event_type=item.event_type,
            attempt=item.attempt,
            code=outcome.status,
            status=status,
        )

    await asyncio.gather(*(one(item) for item in due))
    return len(due)


async def run_sender(services: Services, stop: asyncio.Event) -> None:
    """Until `stop`: a pass, then a pause unless the pass was full."""
    settings = services.settings
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        while not stop.is_set():
            try:
                sent = await send_due(services, client)
            except Exception:  # PostgreSQL away, a bad row: log, pause, try again
                log.exception("webhook pass failed")
                sent = 0
            if sent < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.webhook_poll_seconds)


async def prune_webhook_events(ctx: dict[str, Any]) -> int:
    """Daily (arq cron): events past their retention go, with their delivery log."""
    services = ctx["services"]
    assert isinstance(services, Services)
    async with services.sessionmaker.begin() as s:
        removed = await prune(s, utcnow())
    if removed:
        log.info("webhook events pruned", removed=removed)
    return removed
