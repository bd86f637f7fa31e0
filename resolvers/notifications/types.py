"""GraphQL types of notifications and price alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from models.notifications import AlertCondition, AlertStatus, Kind, NotificationView, PriceAlert
from models.notifications.actions import cursor_of
from models.notifications.preferences import ChannelChoice, Preferences
from models.quotes import display_price
from resolvers.errors import UserError
from resolvers.relay import PageInfo

NotificationKind = strawberry.enum(Kind, name="NotificationKind")
PriceAlertCondition = strawberry.enum(AlertCondition, name="PriceAlertCondition")
PriceAlertStatus = strawberry.enum(AlertStatus, name="PriceAlertStatus")


@strawberry.type(name="PriceAlert")
class PriceAlertType:
    id: strawberry.ID
    asset_id: str
    condition: AlertCondition
    threshold: Decimal = strawberry.field(description="A price, or a percentage (PERCENT_*).")
    repeat: bool = strawberry.field(
        description="Re-arms after each firing once its cool-down has passed."
    )
    cooldown_minutes: int
    status: AlertStatus
    triggered_at: dt.datetime | None = strawberry.field(description="The latest firing.")
    triggered_price: Decimal | None
    created_at: dt.datetime

    @classmethod
    def from_model(cls, a: PriceAlert) -> PriceAlertType:
        return cls(
            id=strawberry.ID(str(a.id)),
            asset_id=a.asset_id,
            condition=AlertCondition(a.condition),
            threshold=display_price(a.threshold),
            repeat=a.repeat,
            cooldown_minutes=a.cooldown_seconds // 60,
            status=AlertStatus(a.status),
            triggered_at=a.triggered_at,
            triggered_price=None if a.triggered_price is None else display_price(a.triggered_price),
            created_at=a.created_at,
        )


@strawberry.input
class CreatePriceAlertInput:
    asset_id: str
    condition: AlertCondition
    threshold: str = strawberry.field(
        description="A decimal string: the price (PRICE_*) or the percentage move from the "
        "previous close (PERCENT_*, e.g. 5 for 5 %)."
    )
    repeat: bool = False
    cooldown_minutes: int | None = strawberry.field(
        default=None, description="Re-arming alerts: minutes between firings (default 60)."
    )


@strawberry.type
class PriceAlertPayload:
    alert: PriceAlertType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="Notification")
class NotificationType:
    id: strawberry.ID
    kind: Kind
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    asset_id: str | None
    order_id: strawberry.ID | None

    @classmethod
    def from_view(cls, n: NotificationView) -> NotificationType:
        return cls(
            id=strawberry.ID(str(n.id)),
            kind=n.kind,
            title=n.title,
            body=n.body,
            created_at=n.created_at,
            read_at=n.read_at,
            asset_id=n.asset_id,
            order_id=None if n.order_id is None else strawberry.ID(str(n.order_id)),
        )


@strawberry.type
class NotificationEdge:
    cursor: str
    node: NotificationType

    @classmethod
    def of(cls, n: NotificationView) -> NotificationEdge:
        return cls(cursor=cursor_of(n), node=NotificationType.from_view(n))


@strawberry.type
class NotificationConnection:
    edges: list[NotificationEdge]
    page_info: PageInfo


@strawberry.type
class MarkNotificationsReadPayload:
    marked: int = 0
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="NotificationChannels")
class ChannelsType:
    kind: Kind
    in_app: bool
    email: bool
    push: bool


@strawberry.input
class ChannelsInput:
    kind: Kind
    in_app: bool = True
    email: bool = True
    push: bool = True

    def to_model(self) -> ChannelChoice:
        return ChannelChoice(self.kind, self.in_app, self.email, self.push)


@strawberry.type(name="NotificationPreferences")
class PreferencesType:
    channels: list[ChannelsType]
    quiet_hours_start: str | None = strawberry.field(description='Local time, "HH:MM".')
    quiet_hours_end: str | None
    timezone: str = strawberry.field(description="IANA time zone of the quiet hours.")

    @classmethod
    def from_model(cls, p: Preferences) -> PreferencesType:
        return cls(
            channels=[
                ChannelsType(kind=c.kind, in_app=c.in_app, email=c.email, push=c.push)
                for c in p.channels
            ],
            quiet_hours_start=None
            if p.quiet_hours_start is None
            else p.quiet_hours_start.strftime("%H:%M"),
            quiet_hours_end=None
            if p.quiet_hours_end is None
            else p.quiet_hours_end.strftime("%H:%M"),
            timezone=p.timezone,
        )


@strawberry.input
class UpdateNotificationPreferencesInput:
    channels: list[ChannelsInput] | None = None
    quiet_hours_start: str | None = strawberry.field(
        default=None, description='"HH:MM" local time; with quietHoursEnd. "" clears both.'
    )
    quiet_hours_end: str | None = None
    timezone: str | None = None


@strawberry.type
class UpdateNotificationPreferencesPayload:
    preferences: PreferencesType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RegisterPushSubscriptionInput:
    endpoint: str
    p256dh: str
    auth: str


@strawberry.type
class RegisterPushSubscriptionPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
