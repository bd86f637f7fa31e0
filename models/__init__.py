"""Bourse's durable facts: SQLAlchemy typed tables and the rules that keep data true."""

from models.auth import AuthSession, PasswordResetToken, RecoveryCode
from models.base import Base
from models.users import KycStatus, Role, User

__all__ = ["AuthSession", "Base", "KycStatus", "PasswordResetToken", "RecoveryCode", "Role", "User"]
