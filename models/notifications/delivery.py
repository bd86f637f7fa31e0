"""Delivery bookkeeping: one ``notification_deliveries`` row per (notification, channel).

- ``plan``: the fan-out of one notification (the ``dispatch_notification`` job): the channels
  its user's preferences choose for its kind (email only with an address, push only with a
  live subscription), each as a PENDING row (``ON CONFLICT DO NOTHING``: planned once, however
  often it is asked), email deferred to the end of the quiet hours unless urgent; then
  ``dispatched_at`` is set. The in-app channel is the row itself (published by its producer).
- ``claim``: a channel job locks its row (``FOR UPDATE``) for the length of the send and acts
  only while it is PENDING; ``sent`` / ``failed`` record the outcome in the same transaction.
  So an arq retry, a duplicate job or two workers never send twice: the second one waits for
  the lock and finds the row SENT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import preferences
from models.notifications.tables import (
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    PushSubscription,
)
from models.users import User


@dataclass(frozen=True, slots=True)
class Planned:
    channel: Channel
    not_before: datetime | None


async def plan(s: AsyncSession, notification_id: uuid.UUID, now: datetime) -> list[Planned]:
    """The pending deliveries of a notification (planned now or before); call in a
    transaction."""
    n = await s.get(Notification, notification_id, with_for_update=True)
    if n is None:
        return []
    if n.dispatched_at is None:
        prefs = await preferences.load(s, n.user_id)
        choice = prefs.choice(n.kind)
        wanted: list[Planned] = []
        email = await s.scalar(select(User.email).where(User.id == n.user_id))
        if choice.email and email and n.email:
            quiet = None if n.urgent else prefs.quiet_until(now)
            wanted.append(Planned(Channel.EMAIL, quiet))
        if choice.push:
            has_push = await s.scalar(
                select(PushSubscription.id)
                .where(
                    PushSubscription.user_id == n.user_id, PushSubscription.disabled_at.is_(None)
                )
                .limit(1)
            )
            if has_push is not None:
                wanted.append(Planned(Channel.PUSH, None))
        for p in wanted:
            await s.execute(
                insert(NotificationDelivery)
                .values(
                    notification_id=n.id,
                    channel=p.channel,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    not_before=p.not_before,
                    created_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_notification_deliveries_notification_id")
            )
        n.dispatched_at = now
    rows = (
        await s.execute(
            select(NotificationDelivery.channel, NotificationDelivery.not_before).where(
                NotificationDelivery.notification_id == notification_id,
                NotificationDelivery.status == DeliveryStatus.PENDING,
            )
        )
    ).all()
    return [Planned(Channel(r.channel), r.not_before) for r in rows]


async def claim(
    s: AsyncSession, notification_id: uuid.UUID, channel: Channel
) -> NotificationDelivery | None:
    """The PENDING delivery row, locked until the transaction ends; None when it is already
    SENT, FAILED or SKIPPED (or was never planned)."""
    row = await s.scalar(
        select(NotificationDelivery)
        .where(
            NotificationDelivery.notification_id == notification_id,
            NotificationDelivery.channel == channel,
        )
        .with_for_update()
    )
    if row is None or row.status is not DeliveryStatus.PENDING:
        return None
    return row


async def finish(
    s: AsyncSession,
    row: NotificationDelivery,
    status: DeliveryStatus,
    now: datetime,
    error: str | None = None,
    *,
    attempted: bool = True,
) -> None:
    """The row's outcome; ``attempted``: this call is an attempt of its own (False after
    ``attempt_failed`` counted it)."""
    values: dict[str, object] = {"status": status}
    if attempted:
        values["attempts"] = row.attempts + 1
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    if error is not None:
        values["last_error"] = error[:2000]
    await s.execute(
        update(NotificationDelivery).where(NotificationDelivery.id == row.id).values(**values)
    )


async def attempt_failed(s: AsyncSession, row: NotificationDelivery, error: str) -> int:
    """Record a failed attempt (the row stays PENDING for the retry); the attempts so far."""
    attempts = row.attempts + 1
    await s.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == row.id)
        .values(attempts=attempts, last_error=error[:2000])
    )
    return attempts
