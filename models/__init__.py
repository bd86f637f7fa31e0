"""Bourse's durable facts: SQLAlchemy typed tables and the rules that keep data true."""

from models.assets import Asset, AssetClass
from models.auth import AuthSession, PasswordResetToken, RecoveryCode
from models.base import Base
from models.candles import Candle
from models.funds import FundTransaction
from models.ledger import Hold, JournalEntry, LedgerAccount, Posting
from models.news import NewsItem
from models.users import KycStatus, Role, User

__all__ = [
    "Asset",
    "AssetClass",
    "AuthSession",
    "Base",
    "Candle",
    "FundTransaction",
    "Hold",
    "JournalEntry",
    "KycStatus",
    "LedgerAccount",
    "NewsItem",
    "PasswordResetToken",
    "Posting",
    "RecoveryCode",
    "Role",
    "User",
]
