"""Partner tables: API keys, partner apps (OAuth2 clients), consents, codes, tokens, and the
trusted-document store.

Every secret (key, client secret, authorization code, access token) is a 256-bit random string
kept only as its SHA-256 digest (`*_hash`: the data export leaves such columns out), as sessions
are (`models/auth.py`). A key or token row is never deleted on revocation: `revoked_at` is set,
so `apiKeys` and the connected apps keep their history.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk


class ApiKey(Base):
    """A customer's key for their own account: scoped, rate limited, revocable."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    requests_per_minute: Mapped[int]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_keys_user", "user_id", "created_at"),)


class PartnerApp(Base):
    """A third party's application, registered by ADMIN: an OAuth2 client."""

    __tablename__ = "partner_apps"

    id: Mapped[uuid.UUID] = uuid_pk()
    client_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(Text))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    requests_per_minute: Mapped[int]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class OAuthGrant(Base):
    """A customer's consent: this app may act for them within these scopes until revoked."""

    __tablename__ = "oauth_grants"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner_apps.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_oauth_grants_user", "user_id", "created_at"),
        # One live consent per app and customer: approving again widens or narrows it.
        Index(
            "uq_oauth_grants_app_user_live",
            "app_id",
            "user_id",
            unique=True,
            postgresql_where="revoked_at IS NULL",
        ),
    )


class OAuthCode(Base):
    """An authorization code: single use, minutes long, bound to the PKCE challenge."""

    __tablename__ = "oauth_codes"

    id: Mapped[uuid.UUID] = uuid_pk()
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OAuthToken(Base):
    """An access token issued to an app: for a customer (through a grant) or for the app
    itself (client credentials: no customer, market data only)."""

    __tablename__ = "oauth_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    app_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("partner_apps.id", ondelete="CASCADE"), index=True
    )
    grant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TrustedDocument(Base):
    """A GraphQL document by the SHA-256 of its text (APQ registrations in development, and
    every document ADMIN registers for a partner). `canonical_hash` is the SHA-256 of the
    document as graphql-core prints it, so the same operation sent with other whitespace or
    comments is recognised."""

    __tablename__ = "trusted_documents"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    canonical_hash: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class PartnerDocument(Base):
    """Which trusted documents a partner app may run (registered by ADMIN)."""

    __tablename__ = "partner_documents"

    app_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("partner_apps.id", ondelete="CASCADE"), primary_key=True
    )
    document_hash: Mapped[str] = mapped_column(
        ForeignKey("trusted_documents.hash", ondelete="CASCADE"), primary_key=True
    )
    canonical_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_partner_documents_canonical", "app_id", "canonical_hash"),)
