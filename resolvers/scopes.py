"""Which scope opens which root field to a partner credential (API key, OAuth token).

Read by the declared permissions (`resolvers.permissions`): a scoped caller reaching a
protected root field needs the scope named here, and a protected field below the root (a
position under a public `asset`, say) needs `READ_ACCOUNT`. A protected root field not named
here is closed to every scoped caller (`FORBIDDEN`): security settings, keys themselves,
staff tools, exports. Public fields stay public whoever calls.
"""

from __future__ import annotations

from models.partners.scopes import ApiScope

_READ_ACCOUNT = (
    "account", "me", "document", "documents", "notification", "notifications",
    "notificationPreferences", "unreadNotificationCount", "order", "orders",
    "performanceAnalytics", "portfolio", "portfolioPerformance", "portfolios", "priceAlerts",
    "recurringInvestments", "transactions", "watchlist", "watchlists",
    "orderUpdates", "notificationAdded",
)  # fmt: skip
_READ_MARKET = (
    "asset",
    "assets",
    "marketHistory",
    "marketPrice",
    "marketSummary",
    "news",
    "quotes",
)

ROOT_SCOPES: dict[str, ApiScope] = {
    **{name: ApiScope.READ_ACCOUNT for name in _READ_ACCOUNT},
    **{name: ApiScope.READ_MARKET for name in _READ_MARKET},
    "placeOrder": ApiScope.TRADE,
    "replaceOrder": ApiScope.TRADE,
    "cancelOrder": ApiScope.TRADE,
    "deposit": ApiScope.FUNDS,
    "withdraw": ApiScope.FUNDS,
}
ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})
# Webhooks (resolvers/partners/webhooks.py): any account scope opens them; which events an
# endpoint receives then follows the credential's scopes (models/webhooks/events.py).
ACCOUNT_SCOPES = frozenset({ApiScope.READ_ACCOUNT, ApiScope.TRADE, ApiScope.FUNDS})
ANY_ACCOUNT_SCOPE = frozenset(
    {
        "webhooks",
        "webhookDeliveries",
        "createWebhook",
        "updateWebhook",
        "deleteWebhook",
        "replayWebhookDelivery",
    }
)


def required_scope(parent_type: str, field_name: str) -> ApiScope | None:
    """The scope a protected field needs; None: closed to scoped callers."""
    if parent_type in ROOT_TYPES:
        return ROOT_SCOPES.get(field_name)
    return ApiScope.READ_ACCOUNT


def allows(scopes: frozenset[str], parent_type: str, field_name: str) -> bool:
    if parent_type in ROOT_TYPES and field_name in ANY_ACCOUNT_SCOPE:
        return bool(scopes & ACCOUNT_SCOPES)
    needed = required_scope(parent_type, field_name)
    return needed is not None and needed in scopes
