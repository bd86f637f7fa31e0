"""KYC for tests that act through the services rather than the API: the sandbox provider
verifies a well-formed submission at once, as `submitKyc` would."""

from __future__ import annotations

import random
import uuid
from datetime import date

from models.kyc import KycInput
from models.services import Services
from models.users import KycStatus


def fresh_ssn() -> str:
    """A well-formed SSN no other test uses (area 001-665, group and serial never zero)."""
    return f"{random.randint(1, 665):03d}-{random.randint(1, 99):02d}-{random.randint(1, 9999):04d}"


def kyc_input(first: str = "Test", last: str = "Customer", tax_id: str | None = None) -> KycInput:
    return KycInput(
        legal_first_name=first,
        legal_last_name=last,
        date_of_birth=date(1985, 6, 15),
        line1="1 Test Street",
        line2=None,
        city="Springfield",
        region="IL",
        postal_code="62701",
        country="US",
        tax_id=tax_id or fresh_ssn(),
        citizenship="US",
    )


async def verify(services: Services, user_id: uuid.UUID) -> None:
    user = await services.kyc.submit(user_id, kyc_input())
    assert user.kyc_status is KycStatus.VERIFIED
