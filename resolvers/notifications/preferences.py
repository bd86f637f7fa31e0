"""notificationPreferences, updateNotificationPreferences, registerPushSubscription,
vapidPublicKey."""

from __future__ import annotations

from datetime import time

import strawberry

from models.errors import DomainError, ErrorCode
from models.notifications.preferences import PreferenceChanges
from models.notifications.push import public_key_of
from resolvers.calls import Call, SignedIn, query
from resolvers.mutations import mutation
from resolvers.notifications.types import (
    PreferencesType,
    RegisterPushSubscriptionInput,
    RegisterPushSubscriptionPayload,
    UpdateNotificationPreferencesInput,
    UpdateNotificationPreferencesPayload,
)
from resolvers.permissions import IsAuthenticated


def _clock_time(raw: str, field: str) -> time:
    try:
        hours, minutes = raw.strip().split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise DomainError.one(ErrorCode.INVALID_INPUT, 'A local time "HH:MM".', field) from None


@strawberry.type
class PreferencesQuery:
    @query(IsAuthenticated, description="Channels per kind, and the quiet hours.")
    async def notification_preferences(self, call: SignedIn) -> PreferencesType:
        found = await call.services.notification_preferences.get(call.principal.user_id)
        return PreferencesType.from_model(found)

    @query(None, description="The Web Push application server key (VAPID), URL-safe base64.")
    async def vapid_public_key(self, call: Call) -> str:
        return public_key_of(call.services.settings.resolved_vapid_private_key())


@strawberry.type
class PreferencesMutation:
    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_ALLOWED, ErrorCode.INVALID_INPUT),
        payload=UpdateNotificationPreferencesPayload,
        description="Change the channels of some kinds (the others keep theirs) and the quiet "
        "hours (non-urgent email waits for their end). SECURITY cannot be switched off "
        "(NOT_ALLOWED).",
    )
    async def update_notification_preferences(
        self, call: SignedIn, input: UpdateNotificationPreferencesInput
    ) -> UpdateNotificationPreferencesPayload:
        start = end = None
        clear = False
        if input.quiet_hours_start == "" and input.quiet_hours_end in ("", None):
            clear = True
        else:
            if input.quiet_hours_start is not None:
                start = _clock_time(input.quiet_hours_start, "quietHoursStart")
            if input.quiet_hours_end is not None:
                end = _clock_time(input.quiet_hours_end, "quietHoursEnd")
        changes = PreferenceChanges(
            channels=[c.to_model() for c in input.channels or []],
            quiet_hours_start=start,
            quiet_hours_end=end,
            clear_quiet_hours=clear,
            timezone=input.timezone,
        )
        found = await call.services.notification_preferences.update(call.principal.user_id, changes)
        return UpdateNotificationPreferencesPayload(preferences=PreferencesType.from_model(found))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.INVALID_INPUT,),
        payload=RegisterPushSubscriptionPayload,
        description="Register this browser's Web Push subscription (PushSubscription.toJSON: "
        "endpoint, keys.p256dh, keys.auth).",
    )
    async def register_push_subscription(
        self, call: SignedIn, input: RegisterPushSubscriptionInput
    ) -> RegisterPushSubscriptionPayload:
        await call.services.push_subscriptions.register(
            call.principal.user_id, input.endpoint, input.p256dh, input.auth
        )
        return RegisterPushSubscriptionPayload()
