"""Compliance tables: the customer's identification (KYC) and compliance cases (issue 17).

Tables only; the rules that change them are in `models/kyc.py` (submissions and the provider's
decisions), `models/compliance.py` (cases: opening, the queue, resolving) and
`models/monitoring.py` (the AML and fraud rules that open them).

The tax id, the date of birth and the address given for KYC are sealed (models/envelope.py) with
their column's name as associated data (`kyc_profiles.tax_id` …, `sealed_column_context`), so
the data export opens them and nothing else does by accident; `tax_id_bidx` is the tax id's
blind index (HMAC under the index key), for finding a tax id already used by another account
without decrypting anyone's.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk
from models.users import KycStatus

TAX_ID_COLUMN = "kyc_profiles.tax_id"
KYC_DATE_OF_BIRTH_COLUMN = "kyc_profiles.date_of_birth"
KYC_ADDRESS_COLUMN = "kyc_profiles.address"


class KycProfile(Base):
    """The latest identification a customer submitted (one row per user; a resubmission after
    REJECTED or NEEDS_REVIEW replaces it) and the provider's decision on it."""

    __tablename__ = "kyc_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    legal_first_name: Mapped[str] = mapped_column(String(100))
    legal_last_name: Mapped[str] = mapped_column(String(100))
    citizenship: Mapped[str] = mapped_column(String(2))
    country: Mapped[str] = mapped_column(String(2))  # of the address, for the staff queue
    tax_id_kind: Mapped[str] = mapped_column(String(8))  # SSN | ITIN
    tax_id_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    tax_id_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    date_of_birth_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    address_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # JSON of the address input
    status: Mapped[KycStatus] = mapped_column(
        Enum(KycStatus, name="kyc_status", native_enum=True, create_type=False)
    )
    provider: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    screened_at: Mapped[datetime | None]  # the last sanctions screening of the legal name

    __table_args__ = (Index("ix_kyc_profiles_tax_id_bidx", "tax_id_bidx"),)


class CaseKind(enum.StrEnum):
    SANCTIONS_HIT = "SANCTIONS_HIT"  # the legal name matches a sanctions list entry
    DUPLICATE_TAX_ID = "DUPLICATE_TAX_ID"  # the tax id is another account's
    KYC_REVIEW = "KYC_REVIEW"  # the provider could not decide
    STRUCTURING = "STRUCTURING"  # several deposits just under the reporting threshold
    RAPID_IN_OUT = "RAPID_IN_OUT"  # money deposited and withdrawn again quickly
    NEW_METHOD_AFTER_CHANGE = "NEW_METHOD_AFTER_CHANGE"  # new method right after a change
    WITHDRAWAL_HELD = "WITHDRAWAL_HELD"  # a fraud rule held a withdrawal for review
    DEBIT_BALANCE = "DEBIT_BALANCE"  # the customer owes the firm cash (models/debits.py)


class CaseStatus(enum.StrEnum):
    OPEN = "OPEN"
    ESCALATED = "ESCALATED"  # referred on; the freeze (if any) stays
    CLEARED = "CLEARED"
    CLOSED = "CLOSED"  # the account was closed by compliance


class CaseDecision(enum.StrEnum):
    CLEAR = "CLEAR"
    ESCALATE = "ESCALATE"
    CLOSE_ACCOUNT = "CLOSE_ACCOUNT"


OPEN_STATUSES = (CaseStatus.OPEN, CaseStatus.ESCALATED)
OPEN_CASES_PREDICATE = "status IN ('OPEN', 'ESCALATED')"  # the partial unique index's


class ComplianceCase(Base):
    """One finding to review. `freezes`: while the case is OPEN or ESCALATED (or CLOSED with
    the account), the user's withdrawals are refused with ACCOUNT_FROZEN. `transaction_id`:
    the withdrawal a fraud rule held, released or failed when the case is decided."""

    __tablename__ = "compliance_cases"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[CaseKind] = mapped_column(
        Enum(CaseKind, name="compliance_case_kind", native_enum=True)
    )
    status: Mapped[CaseStatus] = mapped_column(
        Enum(CaseStatus, name="compliance_case_status", native_enum=True)
    )
    freezes: Mapped[bool]
    # What opened it and why, in words a reviewer reads, and the facts behind it.
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The same finding is one open case: (user, kind, key) is unique among open cases.
    dedupe_key: Mapped[str] = mapped_column(String(200))
    transaction_id: Mapped[uuid.UUID | None]
    decision: Mapped[CaseDecision | None] = mapped_column(
        Enum(CaseDecision, name="compliance_decision", native_enum=True)
    )
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index(
            "uq_compliance_cases_open",
            "user_id",
            "kind",
            "dedupe_key",
            unique=True,
            postgresql_where=text(OPEN_CASES_PREDICATE),
        ),
        Index("ix_compliance_cases_status_created", "status", "created_at", "id"),
        Index("ix_compliance_cases_user", "user_id", "created_at"),
    )
