"""Notification delivery jobs (arq): the fan-out, one job per channel, and the sweeper.

- ``dispatch_notification(*ids)`` (one job for the rows announced together, job id
  ``notification:<first id>``; the sweeper's ``notification-sweep:<id>``): plans the deliveries
  (``models.notifications.delivery.plan``) and enqueues ``deliver_notification(id, channel)``
  for each, job id ``delivery:<id>:<channel>``; email in quiet hours is deferred to their end
  (``_defer_until``).
- ``deliver_notification``: sends under the delivery row's lock, only while it is PENDING, and
  records SENT in the same transaction; a failed send records the attempt and its error and is
  retried by arq with exponential backoff (``Retry(defer=…)``: 2, 4, 8 s …), FAILED after
  ``MAX_ATTEMPTS``. A push service answering 404/410 disables the subscription (no retry).
- ``sweep_notifications`` (cron, every minute): dispatches notifications whose producer died
  between its commit and the enqueue (``dispatched_at`` still NULL after 30 s).

Email: the notification's title as subject, a plain-text and an HTML part, and a per-kind
unsubscribe link (``List-Unsubscribe`` with one-click POST, RFC 8058) except for SECURITY,
which cannot be switched off. The body never travels through Redis: the job carries ids only.
"""

from __future__ import annotations

import asyncio
import html
import json
import uuid
from datetime import timedelta
from typing import Any, Final

import structlog
from arq import Retry
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from bourse import metrics
from bourse.clock import utcnow
from bourse.settings import Settings
from models.notifications import delivery
from models.notifications.preferences import ALWAYS_ON, unsubscribe_token
from models.notifications.tables import (
    Channel,
    DeliveryStatus,
    Kind,
    Notification,
    PushSubscription,
)
from models.services import Services, arq_queue_name
from models.users import User
from workers.email import build_message, deliver

log = structlog.get_logger("bourse.notifications.delivery")

MAX_ATTEMPTS: Final = 4  # below arq's own max_tries (5), so the row is marked FAILED
SWEEP_AFTER: Final = timedelta(seconds=30)


def _services(ctx: dict[str, Any]) -> Services:
    services = ctx["services"]
    assert isinstance(services, Services)
    return services


async def dispatch_notification(ctx: dict[str, Any], *notification_ids: str) -> int:
    """Plan the deliveries of these notifications (one transaction each) and enqueue them."""
    services = _services(ctx)
    count = 0
    for notification_id in notification_ids:
        ident = uuid.UUID(notification_id)
        async with services.sessionmaker.begin() as s:
            planned = await delivery.plan(s, ident, utcnow())
        for p in planned:
            await services.jobs.enqueue_job(
                "deliver_notification",
                notification_id,
                p.channel.value,
                _job_id=f"delivery:{notification_id}:{p.channel.value}",
                _defer_until=p.not_before,
                _queue_name=arq_queue_name(services.settings),
            )
        count += len(planned)
    return count


async def deliver_notification(ctx: dict[str, Any], notification_id: str, channel: str) -> str:
    services = _services(ctx)
    ident, chan = uuid.UUID(notification_id), Channel(channel)
    error: str | None = None
    attempts = 0
    async with services.sessionmaker.begin() as s:
        row = await delivery.claim(s, ident, chan)
        if row is None:
            return "done already"
        n = await s.get_one(Notification, ident)
        user = await s.get_one(User, n.user_id)
        try:
            if chan is Channel.EMAIL:
                await _send_email(services.settings, n, user)
                status = DeliveryStatus.SENT
            else:
                status = await _send_push(services, s, n)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            attempts = await delivery.attempt_failed(s, row, error)
            if attempts >= MAX_ATTEMPTS:
                await delivery.finish(
                    s, row, DeliveryStatus.FAILED, utcnow(), error, attempted=False
                )
        else:
            await delivery.finish(s, row, status, utcnow())
            metrics.notification_deliveries.labels(channel, str(status)).inc()
            log.info("notification delivered", id=notification_id, channel=channel, status=status)
            return str(status)
    log.warning(
        "notification delivery failed",
        id=notification_id,
        channel=channel,
        attempts=attempts,
        error=error,
    )
    if attempts >= MAX_ATTEMPTS:
        return "FAILED"
    raise Retry(defer=2**attempts)


def _links(settings: Settings, n: Notification) -> tuple[str, str | None]:
    base = settings.link_base_url()
    if n.kind in ALWAYS_ON:
        return f"{base}/notifications", None
    token = unsubscribe_token(settings.resolved_secret_key(), n.user_id, Kind(n.kind))
    return f"{base}/notifications", f"{base}/notifications/unsubscribe?token={token}"


async def _send_email(settings: Settings, n: Notification, user: User) -> None:
    inbox, unsubscribe = _links(settings, n)
    kind = Kind(n.kind).value.replace("_", " ").lower()
    footer = (
        f"Unsubscribe from {kind} emails: {unsubscribe}"
        if unsubscribe
        else "Security notices cannot be switched off: they protect your account."
    )
    text = f"{n.body}\n\nYour notifications: {inbox}\n\n{footer}\n"
    footer_html = (
        f'<a href="{html.escape(unsubscribe)}">Unsubscribe from {html.escape(kind)} emails</a>'
        if unsubscribe
        else "Security notices cannot be switched off: they protect your account."
    )
    page = (
        '<!doctype html><html><body style="font-family: sans-serif">'
        f'<h1 style="font-size: 18px">{html.escape(n.title)}</h1>'
        f"<p>{html.escape(n.body)}</p>"
        f'<p><a href="{html.escape(inbox)}">Your notifications</a></p>'
        f'<p style="color: #666; font-size: 12px">{footer_html}</p>'
        "</body></html>"
    )
    headers = {"X-Bourse-Notification": f"{n.kind.value}:{n.id}"}
    if unsubscribe:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg = build_message(settings, user.email, n.title, text, html=page, headers=headers)
    await deliver(settings, msg)


async def _send_push(services: Services, s: Any, n: Notification) -> DeliveryStatus:
    """Push to every live subscription of the user; SKIPPED when none is left."""
    subs = await services.push_subscriptions.live(n.user_id)
    if not subs:
        return DeliveryStatus.SKIPPED
    settings = services.settings
    vapid = Vapid02.from_pem(settings.resolved_vapid_private_key().encode())
    payload = json.dumps(
        {
            "id": str(n.id),
            "kind": n.kind.value,
            "title": n.title,
            "body": n.body,
            "assetId": n.asset_id,
            "orderId": None if n.order_id is None else str(n.order_id),
        }
    )
    delivered = 0
    failures: list[str] = []
    for sub in subs:
        outcome = await asyncio.to_thread(
            _push_one, sub, payload, vapid, settings.vapid_subject, n.id.hex[:32]
        )
        if outcome == "sent":
            delivered += 1
        elif outcome == "gone":
            await services.push_subscriptions.disable(sub.id)
        else:
            failures.append(outcome)
    if failures and not delivered:
        raise RuntimeError("; ".join(failures))
    return DeliveryStatus.SENT if delivered else DeliveryStatus.SKIPPED


def _push_one(sub: PushSubscription, payload: str, vapid: Vapid02, subject: str, topic: str) -> str:
    try:
        webpush(
            {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
            data=payload,
            vapid_private_key=vapid,
            vapid_claims={"sub": subject},
            ttl=24 * 3600,
            timeout=10,
            headers={"Topic": topic, "Urgency": "normal"},
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (404, 410):
            return "gone"
        return f"push service answered {status}: {exc}"
    return "sent"


async def sweep_notifications(ctx: dict[str, Any]) -> int:
    services = _services(ctx)
    stale = await services.notifier.undispatched(SWEEP_AFTER)
    for ident in stale:  # one job each: job ids differ from the lost batch's
        await services.jobs.enqueue_job(
            "dispatch_notification",
            str(ident),
            _job_id=f"notification-sweep:{ident}",
            _queue_name=arq_queue_name(services.settings),
        )
    return len(stale)
