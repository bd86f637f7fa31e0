"""Identity-verification providers: one small interface, a sandbox, room for a real vendor.

`Kyc.submit` (models/kyc.py) stores the submission (PENDING), runs our own checks (sanctions,
duplicate tax id), then asks the provider. A provider answers at once (the sandbox) or says
PENDING and decides later: a real vendor's webhook or poll then calls `Kyc.apply_decision`,
which acts only on a profile still PENDING, so a late or repeated answer changes nothing twice.
The provider is never called inside a database transaction (a vendor's HTTP call must not hold
a row lock).

`BOURSE_KYC_PROVIDER` chooses it: `sandbox` (the default in every mode, like the sandbox payment
rail) verifies any well-formed submission, except a legal last name ending in `-review`
(NEEDS_REVIEW) or `-reject` (REJECTED): deterministic outcomes by test data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from models.users import KycStatus


@dataclass(frozen=True, slots=True)
class KycSubmission:
    """What the customer gave, validated; the provider sees it, the database keeps it sealed."""

    legal_first_name: str
    legal_last_name: str
    date_of_birth: date
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    tax_id: str  # nine digits, no dashes
    tax_id_kind: str  # SSN | ITIN
    citizenship: str  # ISO 3166-1 alpha-2

    @property
    def legal_name(self) -> str:
        return f"{self.legal_first_name} {self.legal_last_name}"


@dataclass(frozen=True, slots=True)
class KycDecision:
    status: KycStatus  # VERIFIED, REJECTED, NEEDS_REVIEW, or PENDING (decided later)
    reason: str | None = None
    reference: str | None = None  # the provider's id for the check


class KycProvider(Protocol):
    name: str

    async def verify(self, user_id: uuid.UUID, submission: KycSubmission) -> KycDecision: ...


class SandboxKycProvider:
    name = "sandbox"

    async def verify(self, user_id: uuid.UUID, submission: KycSubmission) -> KycDecision:
        last = submission.legal_last_name.lower()
        reference = f"sandbox-{uuid.uuid4().hex[:12]}"
        if last.endswith("-review"):
            return KycDecision(KycStatus.NEEDS_REVIEW, "The sandbox asks for a review.", reference)
        if last.endswith("-reject"):
            return KycDecision(KycStatus.REJECTED, "The sandbox rejected the identity.", reference)
        return KycDecision(KycStatus.VERIFIED, None, reference)


def kyc_provider_for(name: str) -> KycProvider:
    if name == "sandbox":
        return SandboxKycProvider()
    raise ValueError(f"unknown KYC provider {name!r} (BOURSE_KYC_PROVIDER): known: sandbox")
