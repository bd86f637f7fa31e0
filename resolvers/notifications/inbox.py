"""The inbox: notifications, unreadNotificationCount, markNotificationsRead, notificationAdded.

``notificationAdded`` listens on the signed-in user's channel only (its name comes from the
principal, never from an argument), so nobody hears another user's notifications. It is live
from the moment the subscription is accepted; the inbox (``notifications``) is the durable
record a client re-reads after a reconnect. Like ``orderUpdates`` the stream lives as long as
its session (``resolvers.live_session``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from bourse.keys import notification_channel
from models.errors import DomainError, ErrorCode
from models.notifications import NotificationView
from resolvers.calls import SignedIn, query
from resolvers.context import Context
from resolvers.errors import ApiError, bad_input
from resolvers.hub import BoundedQueueSubscriber, SubscriberOverflow
from resolvers.live_session import SessionWatch
from resolvers.mutations import mutation
from resolvers.notifications.types import (
    MarkNotificationsReadPayload,
    NotificationConnection,
    NotificationEdge,
    NotificationType,
)
from resolvers.permissions import IsAuthenticated
from resolvers.relay import page_info


@strawberry.type
class InboxQuery:
    @query(IsAuthenticated, description="Your notifications, newest first (`first` capped at 100).")
    async def notifications(
        self,
        call: SignedIn,
        unread_only: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> NotificationConnection:
        try:
            page = await call.services.notifier.page(
                call.principal.user_id, unread_only=bool(unread_only), first=first, after=after
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [NotificationEdge.of(n) for n in page.items]
        return NotificationConnection(edges=edges, page_info=page_info(edges, page.has_next_page))

    @query(IsAuthenticated, description="One of your notifications; null otherwise.")
    async def notification(self, call: SignedIn, id: strawberry.ID) -> NotificationType | None:
        try:
            ident = uuid.UUID(str(id))
        except ValueError:
            return None
        found = await call.services.notifier.get(call.principal.user_id, ident)
        return None if found is None else NotificationType.from_view(found)

    @query(IsAuthenticated, description="How many of your notifications are unread.")
    async def unread_notification_count(self, call: SignedIn) -> int:
        return await call.services.notifier.unread_count(call.principal.user_id)


@strawberry.type
class InboxMutation:
    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.INVALID_INPUT,),
        payload=MarkNotificationsReadPayload,
        description="Mark notifications read: the given ids, or every one without ids. Ids "
        "that are not yours change nothing. `marked`: how many changed.",
    )
    async def mark_notifications_read(
        self, call: SignedIn, ids: list[strawberry.ID] | None = None
    ) -> MarkNotificationsReadPayload:
        parsed: list[uuid.UUID] | None = None
        if ids is not None:
            if len(ids) > 500:
                raise DomainError.one(ErrorCode.INVALID_INPUT, "At most 500 ids.", "ids")
            parsed = []
            for raw in ids:
                try:
                    parsed.append(uuid.UUID(str(raw)))
                except ValueError:
                    continue  # not an id of anything: nothing to mark
        marked = await call.services.notifier.mark_read(call.principal.user_id, parsed)
        return MarkNotificationsReadPayload(marked=marked)


@strawberry.type
class InboxSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Each new notification of the signed-in user (and nobody else's), live.",
    )
    async def notification_added(
        self, info: Info[Context, Any]
    ) -> AsyncGenerator[NotificationType, None]:
        principal = await info.context.require_principal()
        services = info.context.services
        hub = info.context.hub
        if hub is None:
            raise ApiError("Subscriptions are not served here.", "SERVICE_UNAVAILABLE")
        channel = notification_channel(services.settings.redis_prefix, str(principal.user_id))
        subscriber = BoundedQueueSubscriber(services.settings.quotes_hub_buffer)
        watch = SessionWatch(info.context)
        async with hub.subscription([channel], subscriber):
            while True:
                try:
                    delivery = await asyncio.wait_for(subscriber.get(), watch.wait_budget())
                except TimeoutError:
                    await watch.check()
                    continue
                except SubscriberOverflow:
                    raise ApiError(
                        "Too many notifications waiting: re-read the inbox.",
                        "SUBSCRIPTION_OVERFLOW",
                    ) from None
                if delivery.messages:
                    await watch.check()
                for message in delivery.messages:
                    view = message.decode(NotificationView.from_json)
                    if view.user_id == principal.user_id:
                        yield NotificationType.from_view(view)
