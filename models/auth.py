"""Sessions (access + refresh tokens), recovery codes and password-reset tokens.

Only SHA-256 digests of tokens are stored: the tokens themselves are 256-bit random strings,
so a fast digest is enough (argon2 is for low-entropy passwords).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk


class AuthSession(Base):
    """One signed-in device. Rotation creates a new row in the same family."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID]
    access_token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    refresh_token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    access_expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]
    ip: Mapped[str | None]
    user_agent: Mapped[str | None]

    __table_args__ = (
        Index("ix_auth_sessions_user_active", "user_id", postgresql_where="revoked_at IS NULL"),
        Index("ix_auth_sessions_family", "family_id"),
    )


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    __table_args__ = (Index("uq_recovery_codes_user_code", "user_id", "code_hash", unique=True),)


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class EmailChangeRequest(Base):
    """A new address waiting for its owner to confirm it (the account's email is unchanged
    until then). A newer request replaces an older one; the token is stored hashed."""

    __tablename__ = "email_change_requests"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    new_email: Mapped[str]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
