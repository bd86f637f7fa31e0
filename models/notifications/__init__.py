"""Notifications and price alerts (issue 15, API.md section 8): tables (``tables``), the one
way to write and read them (``actions``), preferences and quiet hours (``preferences``), price
alerts and their claim (``alerts``), the evaluators' in-memory index (``alert_index``), Web
Push subscriptions and VAPID (``push``), and what each producer says (``messages``)."""

from models.notifications.actions import Draft, NotificationView, Notifier, record
from models.notifications.alerts import PriceAlerts
from models.notifications.preferences import NotificationPreferences
from models.notifications.push import PushSubscriptions
from models.notifications.tables import (
    AlertCondition,
    AlertStatus,
    Channel,
    DeliveryStatus,
    Kind,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationSettings,
    PriceAlert,
    PushSubscription,
)

__all__ = [
    "AlertCondition",
    "AlertStatus",
    "Channel",
    "DeliveryStatus",
    "Draft",
    "Kind",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "NotificationPreferences",
    "NotificationSettings",
    "NotificationView",
    "Notifier",
    "PriceAlert",
    "PriceAlerts",
    "PushSubscription",
    "PushSubscriptions",
    "record",
]
