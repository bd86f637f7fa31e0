"""Notifications and price alerts (API.md section 8): ``alerts`` (createPriceAlert,
priceAlerts, cancelPriceAlert), ``inbox`` (notifications, unreadNotificationCount,
markNotificationsRead, notificationAdded), ``preferences`` (notificationPreferences,
updateNotificationPreferences, registerPushSubscription, vapidPublicKey)."""
