"""KYC (`submitKyc`) and the compliance queue for COMPLIANCE/ADMIN (API.md section 11)."""

from __future__ import annotations

import uuid

import strawberry

from models.audit import Entry
from models.compliance import encode_cursor
from models.compliance_tables import CaseDecision, CaseStatus
from models.errors import DomainError, ErrorCode
from models.kyc import SUBMIT_ERRORS, KycInput
from resolvers.accounts.types import UserType
from resolvers.calls import SignedIn, query
from resolvers.compliance.types import (
    ComplianceCaseConnection,
    ComplianceCaseEdge,
    ComplianceCaseType,
    ResolveComplianceCasePayload,
    SubmitKycInput,
    SubmitKycPayload,
)
from resolvers.errors import bad_input
from resolvers.mutations import mutation
from resolvers.permissions import IsAuthenticated, IsCompliance
from resolvers.relay import page_info


def _case_id(value: strawberry.ID) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _audit_read(call: SignedIn, what: str, subject: uuid.UUID | None) -> None:
    """Every staff read of customer data is audited (issue 17)."""
    request = call.context.request
    state = getattr(request, "state", None)
    await call.services.audit.record(
        Entry(
            action=what,
            outcome="ok",
            actor_id=call.principal.user_id,
            subject_id=subject,
            request_id=getattr(state, "request_id", None),
            ip=call.client.ip,
        )
    )


@strawberry.type
class ComplianceQuery:
    @query(
        IsCompliance,
        description="COMPLIANCE and ADMIN: compliance cases (sanctions hits, AML patterns, "
        "held withdrawals), oldest first: the review queue. `first` is capped at 100.",
    )
    async def compliance_cases(
        self,
        call: SignedIn,
        status: CaseStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> ComplianceCaseConnection:
        try:
            page = await call.services.compliance.page(status=status, first=first, after=after)
        except DomainError as exc:
            raise bad_input(exc) from None
        await _audit_read(call, "compliance.cases_read", None)
        edges = [
            ComplianceCaseEdge(cursor=encode_cursor(c), node=ComplianceCaseType.from_model(c))
            for c in page.items
        ]
        return ComplianceCaseConnection(edges=edges, page_info=page_info(edges, page.has_next_page))

    @query(IsCompliance, description="COMPLIANCE and ADMIN: one compliance case.")
    async def compliance_case(self, call: SignedIn, id: strawberry.ID) -> ComplianceCaseType | None:
        case_id = _case_id(id)
        case = None if case_id is None else await call.services.compliance.get(case_id)
        if case is None:
            return None
        await _audit_read(call, "compliance.case_read", case.user_id)
        return ComplianceCaseType.from_model(case)


@strawberry.type
class ComplianceMutation:
    @mutation(
        IsAuthenticated,
        errors=SUBMIT_ERRORS,
        payload=SubmitKycPayload,
        audit="kyc.submit",
        description="Verify your identity (KYC): legal name, date of birth, address, US tax "
        "id (SSN or ITIN) and citizenship. The tax id, birth date and address are stored "
        "encrypted; `User.taxIdMasked` shows the last four digits. The answer carries the "
        "decision when the provider gives it at once (the sandbox does): `User.kycStatus` "
        "VERIFIED, REJECTED or NEEDS_REVIEW, else PENDING. Trading and withdrawals need "
        "VERIFIED.",
    )
    async def submit_kyc(self, call: SignedIn, input: SubmitKycInput) -> SubmitKycPayload:
        a = input.address
        user = await call.services.kyc.submit(
            call.principal.user_id,
            KycInput(
                legal_first_name=input.legal_first_name,
                legal_last_name=input.legal_last_name,
                date_of_birth=input.date_of_birth,
                line1=a.line1,
                line2=a.line2,
                city=a.city,
                region=a.region,
                postal_code=a.postal_code,
                country=a.country,
                tax_id=input.tax_id,
                citizenship=input.citizenship,
            ),
        )
        return SubmitKycPayload(user=UserType.from_model(user))

    @mutation(
        IsCompliance,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.INVALID_STATUS_TRANSITION, ErrorCode.INVALID_INPUT),
        payload=ResolveComplianceCasePayload,
        audit="compliance.resolve",
        description="COMPLIANCE and ADMIN: decide a case, with a note saying why. CLEAR lifts "
        "its freeze and releases a held withdrawal; ESCALATE keeps both; CLOSE_ACCOUNT rejects "
        "the customer, signs them out and refuses a held withdrawal (its money available "
        "again).",
    )
    async def resolve_compliance_case(
        self, call: SignedIn, id: strawberry.ID, decision: CaseDecision, note: str
    ) -> ResolveComplianceCasePayload:
        case_id = _case_id(id)
        if case_id is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such case.", "id")
        case = await call.services.compliance.resolve(
            call.principal.user_id, case_id, decision, note
        )
        return ResolveComplianceCasePayload(case=ComplianceCaseType.from_model(case))
