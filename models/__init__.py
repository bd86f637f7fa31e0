"""Bourse's durable facts: SQLAlchemy typed tables and the rules that keep data true."""

from models.assets import Asset, AssetClass
from models.auth import AuthSession, PasswordResetToken, RecoveryCode
from models.base import Base
from models.candles import Candle
from models.compliance_tables import ComplianceCase, KycProfile
from models.corporate_actions import CorporateAction, CorporateActionEntry
from models.documents.tables import Document
from models.fix import FixOutbound, FixPartner, FixSessionState
from models.funds import FundTransaction
from models.ledger import Hold, JournalEntry, LedgerAccount, Posting
from models.liquidity import LiquidityConfig
from models.matching_epochs import MatchingEpoch
from models.news import NewsItem
from models.notifications.tables import (
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationSettings,
    PriceAlert,
    PushSubscription,
)
from models.orders import Fill, Order, OutboxEntry
from models.partners.tables import (
    ApiKey,
    OAuthCode,
    OAuthGrant,
    OAuthToken,
    PartnerApp,
    PartnerDocument,
    TrustedDocument,
)
from models.performance import PortfolioSnapshot
from models.portfolio_tables import Portfolio, PortfolioAsset, PortfolioFlow, StockTransfer
from models.positions import Lot, Position, PositionFill, RealizedGain
from models.settlement import SettlementCursor
from models.support_tables import (
    HelpArticle,
    HelpFeedback,
    SupportAttachment,
    SupportAudit,
    SupportMacro,
    SupportMessage,
    SupportTicket,
)
from models.users import KycStatus, Role, User
from models.watchlists import Watchlist, WatchlistItem
from models.webhooks.tables import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiKey",
    "Asset",
    "AssetClass",
    "AuthSession",
    "Base",
    "Candle",
    "ComplianceCase",
    "CorporateAction",
    "CorporateActionEntry",
    "Document",
    "Fill",
    "FixOutbound",
    "FixPartner",
    "FixSessionState",
    "FundTransaction",
    "HelpArticle",
    "HelpFeedback",
    "Hold",
    "JournalEntry",
    "KycProfile",
    "KycStatus",
    "LedgerAccount",
    "LiquidityConfig",
    "Lot",
    "MatchingEpoch",
    "NewsItem",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "NotificationSettings",
    "OAuthCode",
    "OAuthGrant",
    "OAuthToken",
    "Order",
    "OutboxEntry",
    "PartnerApp",
    "PartnerDocument",
    "PasswordResetToken",
    "Portfolio",
    "PortfolioAsset",
    "PortfolioFlow",
    "PortfolioSnapshot",
    "Position",
    "PositionFill",
    "Posting",
    "PriceAlert",
    "PushSubscription",
    "RealizedGain",
    "RecoveryCode",
    "Role",
    "SettlementCursor",
    "StockTransfer",
    "SupportAttachment",
    "SupportAudit",
    "SupportMacro",
    "SupportMessage",
    "SupportTicket",
    "TrustedDocument",
    "User",
    "Watchlist",
    "WatchlistItem",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
