"""The compliance queue: cases listed for COMPLIANCE/ADMIN and their decisions (issue 17).

Cases are opened by the rules (`models/cases.py`); here a reviewer decides, with a note:

- CLEAR: the case is CLEARED; its freeze (if any) lifts once no other freezing case is open; a
  held withdrawal is released and paid out as usual; once no other KYC case is open, a
  customer in NEEDS_REVIEW goes on: after our own checks' case (a sanctions name match, a
  duplicate tax id), which stopped the submission before the identity provider saw it, back to
  PENDING and the provider is asked (models/kyc.py); after the provider's own review request
  (KYC_REVIEW), VERIFIED (the reviewer is the decision the provider asked for).
- ESCALATE: the case is ESCALATED (referred on: a SAR, a senior reviewer); the freeze and any
  held withdrawal stay until a later CLEAR or CLOSE_ACCOUNT.
- CLOSE_ACCOUNT: the case is CLOSED, the customer REJECTED (no trading, no withdrawals: the
  freeze stays for good), every session revoked, and a held withdrawal FAILED with exactly its
  hold released. Returning the balance is then an operations matter outside the platform.

A decided case cannot be decided again (INVALID_STATUS_TRANSITION). Each decision is an audit
event (`compliance.decision`, the reviewer as actor, the customer as subject).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import pagination, validation
from models.audit import AuditLog, Entry
from models.auth import AuthSession
from models.compliance_tables import (
    OPEN_STATUSES,
    CaseDecision,
    CaseKind,
    CaseStatus,
    ComplianceCase,
    KycProfile,
)
from models.errors import DomainError, ErrorCode
from models.funds import Funds
from models.kyc import Kyc
from models.users import KycStatus, User

log = structlog.get_logger("bourse.compliance")

KYC_KINDS = (CaseKind.SANCTIONS_HIT, CaseKind.DUPLICATE_TAX_ID, CaseKind.KYC_REVIEW)
PAGE_MAX = 100


@dataclass(frozen=True, slots=True)
class CasePage:
    items: list[ComplianceCase]
    has_next_page: bool


def encode_cursor(case: ComplianceCase) -> str:
    return pagination.encode_cursor(case.created_at, case.id)


class Compliance:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        funds: Funds,
        kyc: Kyc,
        audit: AuditLog,
        signed_out: Callable[[uuid.UUID], Awaitable[None]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._funds = funds
        self._kyc = kyc
        self._audit = audit
        self._signed_out = signed_out
        self.clock = clock

    async def get(self, case_id: uuid.UUID) -> ComplianceCase | None:
        async with self._sm() as s:
            return await s.get(ComplianceCase, case_id)

    async def page(
        self,
        status: CaseStatus | None = None,
        first: int | None = None,
        after: str | None = None,
        user_id: uuid.UUID | None = None,
    ) -> CasePage:
        """Oldest first (a queue), keyset-paginated on (created_at, id)."""
        limit = 20 if first is None else first
        if limit < 0:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "first must not be negative.", "first")
        limit = min(limit, PAGE_MAX)
        query = select(ComplianceCase)
        if status is not None:
            query = query.where(ComplianceCase.status == status)
        if user_id is not None:
            query = query.where(ComplianceCase.user_id == user_id)
        if after:
            created, ident = pagination.decode_cursor(after, uuid.UUID)
            query = query.where(
                tuple_(ComplianceCase.created_at, ComplianceCase.id) > tuple_(created, ident)
            )
        query = query.order_by(ComplianceCase.created_at, ComplianceCase.id).limit(limit + 1)
        async with self._sm() as s:
            items = list((await s.execute(query)).scalars())
        return CasePage(items[:limit], len(items) > limit)

    async def resolve(
        self, actor_id: uuid.UUID, case_id: uuid.UUID, decision: CaseDecision, note: str
    ) -> ComplianceCase:
        text = validation.bounded_text(note or "", 2000, "note")
        if not text:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "Say why in the note.", "note")
        now = self.clock()
        ask_provider = False
        async with self._sm.begin() as s:
            case = await s.get(ComplianceCase, case_id, with_for_update=True)
            if case is None:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such case.", "id")
            if case.status not in OPEN_STATUSES:
                raise DomainError.one(
                    ErrorCode.INVALID_STATUS_TRANSITION,
                    f"The case is already {case.status.value.lower()}.",
                    "decision",
                )
            case.decision = decision
            case.note = text
            case.resolved_by = actor_id
            case.resolved_at = now
            case.updated_at = now
            case.status = {
                CaseDecision.CLEAR: CaseStatus.CLEARED,
                CaseDecision.ESCALATE: CaseStatus.ESCALATED,
                CaseDecision.CLOSE_ACCOUNT: CaseStatus.CLOSED,
            }[decision]
            if decision is CaseDecision.CLOSE_ACCOUNT:
                await self._kyc.set_status(s, case.user_id, KycStatus.REJECTED)
                await s.execute(  # every session, in this transaction (then evicted below)
                    update(AuthSession)
                    .where(AuthSession.user_id == case.user_id, AuthSession.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            elif decision is CaseDecision.CLEAR and case.kind in KYC_KINDS:
                ask_provider = await self._clear_kyc(s, case)
            await s.flush()
        if ask_provider:
            try:
                await self._kyc.ask_provider(case.user_id)
            except Exception:  # PENDING stays; the sweep (Kyc.reask_pending) asks again
                log.warning("KYC provider could not be asked after a CLEAR", exc_info=True)
        if case.transaction_id is not None:
            if decision is CaseDecision.CLEAR:
                await self._release_if_no_other_hold(case)
            elif decision is CaseDecision.CLOSE_ACCOUNT:
                await self._funds.reject_held(case.transaction_id, "Refused by compliance review.")
        if decision is CaseDecision.CLOSE_ACCOUNT:
            await self._signed_out(case.user_id)
        await self._audit.record(
            Entry(
                action="compliance.decision",
                outcome=f"{decision.value}:{case.kind.value}:{case.id}",
                actor_id=actor_id,
                subject_id=case.user_id,
                request_id=None,
                ip=None,
            )
        )
        return case

    async def _clear_kyc(self, s: AsyncSession, case: ComplianceCase) -> bool:
        """The last open KYC case cleared: a customer waiting in NEEDS_REVIEW goes on (the
        module's docstring); True when the provider must now be asked."""
        others = await s.scalar(
            select(ComplianceCase.id)
            .where(
                ComplianceCase.user_id == case.user_id,
                ComplianceCase.id != case.id,
                ComplianceCase.kind.in_(KYC_KINDS),
                ComplianceCase.status.in_(OPEN_STATUSES),
            )
            .limit(1)
        )
        profile_status = await self._kyc_status(s, case.user_id)
        if others is not None or profile_status is not KycStatus.NEEDS_REVIEW:
            return False
        asked = await s.scalar(
            select(KycProfile.provider_reference).where(KycProfile.user_id == case.user_id)
        )
        if asked is None and case.kind is not CaseKind.KYC_REVIEW:
            await self._kyc.set_status(s, case.user_id, KycStatus.PENDING)
            return True
        await self._kyc.set_status(s, case.user_id, KycStatus.VERIFIED)
        return False

    @staticmethod
    async def _kyc_status(s: AsyncSession, user_id: uuid.UUID) -> KycStatus | None:
        status: KycStatus | None = await s.scalar(select(User.kyc_status).where(User.id == user_id))
        return status

    async def _release_if_no_other_hold(self, case: ComplianceCase) -> None:
        """Several rules may hold one withdrawal: it is paid only when every case holding it
        is cleared."""
        assert case.transaction_id is not None
        async with self._sm() as s:
            still = await s.scalar(
                select(ComplianceCase.id)
                .where(
                    ComplianceCase.transaction_id == case.transaction_id,
                    ComplianceCase.status.in_(OPEN_STATUSES),
                )
                .limit(1)
            )
        if still is None:
            await self._funds.release_held(case.transaction_id)
