"""GraphQL types of KYC and the compliance queue."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime

import strawberry

from models.compliance_tables import CaseDecision as CaseDecisionModel
from models.compliance_tables import CaseKind as CaseKindModel
from models.compliance_tables import CaseStatus as CaseStatusModel
from models.compliance_tables import ComplianceCase
from resolvers.accounts.types import UserType
from resolvers.context import Context
from resolvers.errors import UserError
from resolvers.funds.types import TransactionNode
from resolvers.relay import PageInfo

ComplianceCaseKind = strawberry.enum(CaseKindModel, name="ComplianceCaseKind")
ComplianceCaseStatus = strawberry.enum(CaseStatusModel, name="ComplianceCaseStatus")
ComplianceDecision = strawberry.enum(CaseDecisionModel, name="ComplianceDecision")


@strawberry.input
class KycAddressInput:
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 (US, MX, …).")


@strawberry.input
class SubmitKycInput:
    legal_first_name: str
    legal_last_name: str
    date_of_birth: date
    address: KycAddressInput
    tax_id: str = strawberry.field(description="A US SSN or ITIN: 123-45-6789 or 123456789.")
    citizenship: str = strawberry.field(description="ISO 3166-1 alpha-2 (US, MX, …).")


@strawberry.type
class SubmitKycPayload:
    user: UserType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="ComplianceCase")
class ComplianceCaseType:
    id: strawberry.ID
    user_id: strawberry.ID
    kind: CaseKindModel
    status: CaseStatusModel
    freezes: bool = strawberry.field(
        description="Whether the case freezes the customer's withdrawals while it is open."
    )
    summary: str = strawberry.field(description="Why the case was opened, in words.")
    details: str = strawberry.field(description="The facts behind it, as JSON.")
    transaction_id: strawberry.ID | None = strawberry.field(
        description="The withdrawal held until the case is decided."
    )
    decision: CaseDecisionModel | None
    note: str | None
    resolved_by_id: strawberry.ID | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The customer the case is about.")
    async def customer(self, info: strawberry.Info[Context, None]) -> UserType | None:
        user = await info.context.loaders.users.load(uuid.UUID(str(self.user_id)))
        return UserType.from_model(user) if user else None

    @strawberry.field(description="The legal name the customer gave for KYC.")
    async def legal_name(self, info: strawberry.Info[Context, None]) -> str | None:
        profile = await info.context.loaders.kyc_profiles.load(uuid.UUID(str(self.user_id)))
        return f"{profile.legal_first_name} {profile.legal_last_name}" if profile else None

    @strawberry.field(description="The held withdrawal, when the case holds one.")
    async def transaction(self, info: strawberry.Info[Context, None]) -> TransactionNode | None:
        if self.transaction_id is None:
            return None
        txn = await info.context.loaders.transactions.load(uuid.UUID(str(self.transaction_id)))
        return TransactionNode.from_model(txn) if txn else None

    @classmethod
    def from_model(cls, case: ComplianceCase) -> ComplianceCaseType:
        return cls(
            id=strawberry.ID(str(case.id)),
            user_id=strawberry.ID(str(case.user_id)),
            kind=case.kind,
            status=case.status,
            freezes=case.freezes,
            summary=case.summary,
            details=json.dumps(case.details, sort_keys=True),
            transaction_id=strawberry.ID(str(case.transaction_id)) if case.transaction_id else None,
            decision=case.decision,
            note=case.note,
            resolved_by_id=strawberry.ID(str(case.resolved_by)) if case.resolved_by else None,
            resolved_at=case.resolved_at,
            created_at=case.created_at,
            updated_at=case.updated_at,
        )


@strawberry.type
class ComplianceCaseEdge:
    cursor: str
    node: ComplianceCaseType


@strawberry.type
class ComplianceCaseConnection:
    edges: list[ComplianceCaseEdge]
    page_info: PageInfo


@strawberry.type
class ResolveComplianceCasePayload:
    case: ComplianceCaseType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
