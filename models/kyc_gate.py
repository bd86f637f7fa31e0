"""The KYC gate (issue 17): trading and withdrawals need a VERIFIED customer.

Read in the caller's own transaction (the order's, the withdrawal's), so a decision that
lands meanwhile is seen by the next request, never half. A module of its own because orders
and funds use it and `models/kyc.py` (submissions, the provider) would pull in far more.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.errors import DomainError, ErrorCode
from models.users import KycStatus, User


async def require_verified(s: AsyncSession, user_id: uuid.UUID, what: str) -> None:
    """KYC_REQUIRED unless the user is VERIFIED."""
    status = await s.scalar(select(User.kyc_status).where(User.id == user_id))
    if status is not KycStatus.VERIFIED:
        raise kyc_required(what)


def kyc_required(what: str) -> DomainError:
    """The refusal of an unverified customer (also decided inside one-trip statements:
    ``models.orders.direct``)."""
    return DomainError.one(
        ErrorCode.KYC_REQUIRED,
        f"Verify your identity before you {what}: Settings → Identity verification.",
    )
