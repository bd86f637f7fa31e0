"""Users: identity, role, KYC profile and two-factor state."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, Index, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, uuid_pk


class Role(enum.StrEnum):
    CUSTOMER = "CUSTOMER"
    SUPPORT = "SUPPORT"
    ADMIN = "ADMIN"
    COMPLIANCE = "COMPLIANCE"


class KycStatus(enum.StrEnum):
    """Customer identification (models/kyc.py): a new account has submitted nothing; a
    submission is PENDING until the provider decides; only VERIFIED may trade or withdraw."""

    NOT_SUBMITTED = "NOT_SUBMITTED"
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"
    NEEDS_REVIEW = "NEEDS_REVIEW"


# The associated data of each sealed column (models/envelope.py): a value moved to another
# column does not open.
PHONE_COLUMN = "users.phone"
DATE_OF_BIRTH_COLUMN = "users.date_of_birth"
ADDRESS_COLUMN = "users.address"
TOTP_COLUMN = "users.totp_secret"
TOTP_PENDING_COLUMN = "users.totp_pending_secret"

STAFF_ROLES = frozenset({Role.SUPPORT, Role.ADMIN})
# Who works the compliance queue (cases, the audit log): least privilege, apart from SUPPORT.
COMPLIANCE_ROLES = frozenset({Role.COMPLIANCE, Role.ADMIN})


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = uuid_pk()
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=True), default=Role.CUSTOMER
    )
    # KYC profile
    kyc_status: Mapped[KycStatus] = mapped_column(
        Enum(KycStatus, name="kyc_status", native_enum=True), default=KycStatus.NOT_SUBMITTED
    )
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    # Personal data is sealed (models/envelope.py: AES-GCM under a wrapped data key, the column
    # name as associated data); open it with services.fields. The legacy_* columns held it in
    # plaintext before migration 0021 and are emptied by models/sealing.py (expand/contract).
    phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    date_of_birth_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    legacy_phone_number: Mapped[str | None] = mapped_column("phone_number", String(20))
    legacy_date_of_birth: Mapped[date | None] = mapped_column("date_of_birth")
    legacy_address: Mapped[str | None] = mapped_column("address", String(500))
    preferred_language: Mapped[str] = mapped_column(String(16), default="en")
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Two-factor: secrets are sealed like personal data; the *_enc columns held them under
    # Fernet (the secret key) before migration 0021 and are emptied by models/sealing.py.
    two_factor_enabled: Mapped[bool] = mapped_column(default=False)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_pending_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    legacy_totp_secret_enc: Mapped[str | None] = mapped_column("totp_secret_enc", Text)
    legacy_totp_pending_secret_enc: Mapped[str | None] = mapped_column(
        "totp_pending_secret_enc", Text
    )
    # The time step of the last TOTP code accepted: a code is good once (RFC 6238, 5.2).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # The last password, email or two-factor change, and the last profile change: a
    # withdrawal soon after one is held for review (models/fraud.py).
    security_changed_at: Mapped[datetime | None]
    profile_changed_at: Mapped[datetime | None]
    # Closed at its owner's request: personal data pseudonymised, records kept (models.closure).
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
        CheckConstraint("char_length(username) >= 3", name="username_length"),
        CheckConstraint(
            "(two_factor_enabled = false) OR (totp_secret_sealed IS NOT NULL)"
            " OR (totp_secret_enc IS NOT NULL)",
            name="two_factor_secret",
        ),
    )
