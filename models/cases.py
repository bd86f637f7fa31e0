"""Opening a compliance case: the one write path every rule uses (KYC, AML, fraud).

`open_case` runs inside the caller's transaction, so a case is as durable as the act that
raised it (a held withdrawal and its case commit together). The same finding is one open case:
(user, kind, dedupe key) is unique among OPEN/ESCALATED cases (a partial unique index), so the
daily re-screening or a retried request opens nothing twice. After the commit, the caller
writes the audit events (`audit_opened`): every KYC/AML decision is in the audit log.

Customers are not told about AML cases (that would tip off a money launderer); a frozen
account's withdrawals just say ACCOUNT_FROZEN. A held withdrawal is told (fraud protects the
customer): see models/monitoring.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.clock import utcnow
from models.audit import AuditLog, Entry
from models.compliance_tables import (
    OPEN_CASES_PREDICATE,
    OPEN_STATUSES,
    CaseDecision,
    CaseKind,
    CaseStatus,
    ComplianceCase,
)
from models.errors import DomainError, ErrorCode


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found, in words a reviewer reads, and the facts behind it."""

    kind: CaseKind
    summary: str
    dedupe_key: str
    freezes: bool = True
    holds_withdrawal: bool = False  # the withdrawal being asked for waits for the case
    details: dict[str, Any] = field(default_factory=dict)


async def open_case(
    s: AsyncSession,
    user_id: uuid.UUID,
    finding: Finding,
    transaction_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """The new case's id, or None when the same finding already has an open case."""
    now = utcnow()
    case_id = uuid.uuid4()
    inserted = await s.scalar(
        insert(ComplianceCase)
        .values(
            id=case_id,
            user_id=user_id,
            kind=finding.kind,
            status=CaseStatus.OPEN,
            freezes=finding.freezes,
            summary=finding.summary,
            details=finding.details,
            dedupe_key=finding.dedupe_key[:200],
            transaction_id=transaction_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["user_id", "kind", "dedupe_key"],
            # The partial index's own predicate, as literal SQL: with bound parameters a
            # prepared statement's generic plan cannot infer the index (PostgreSQL then says
            # "no unique or exclusion constraint matching the ON CONFLICT specification").
            index_where=text(OPEN_CASES_PREDICATE),
        )
        .returning(ComplianceCase.id)
    )
    return inserted


def frozen_clause(user_id: uuid.UUID) -> Any:
    """True while a freezing case of the user is open, escalated, or closed the account."""
    return exists().where(
        ComplianceCase.user_id == user_id,
        ComplianceCase.freezes.is_(True),
        or_(
            ComplianceCase.status.in_(OPEN_STATUSES),
            ComplianceCase.decision == CaseDecision.CLOSE_ACCOUNT,
        ),
    )


async def require_not_frozen(s: AsyncSession, user_id: uuid.UUID) -> None:
    if await s.scalar(select(frozen_clause(user_id))):
        raise DomainError.one(
            ErrorCode.ACCOUNT_FROZEN,
            "Withdrawals from this account are on hold while our team reviews it. "
            "Contact support if you have questions.",
        )


async def audit_opened(
    audit: AuditLog, user_id: uuid.UUID, opened: Sequence[tuple[uuid.UUID, CaseKind]]
) -> None:
    """One audit event per case a rule opened (the system is the actor)."""
    for case_id, kind in opened:
        await audit.record(
            Entry(
                action="compliance.case_opened",
                outcome=f"{kind.value}:{case_id}",
                actor_id=None,
                subject_id=user_id,
                request_id=None,
                ip=None,
            )
        )
