"""Payment rails: how money enters and leaves the platform.

A rail is told about a transfer once its ledger side is durable and answers with an outcome.
Real rails take the fund transaction id as their idempotency key, so a repeated call (arq may
run a job twice) cannot move money twice on the rail's side either.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class RailOutcome(enum.StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PENDING = "PENDING"  # the rail will call back (not produced by the sandbox)


@dataclass(frozen=True, slots=True)
class RailTransfer:
    transaction_id: uuid.UUID  # the rail's idempotency key
    user_id: uuid.UUID
    amount: Decimal
    currency: str
    method: str


@dataclass(frozen=True, slots=True)
class RailResult:
    outcome: RailOutcome
    reason: str | None = None


class PaymentRail(Protocol):
    async def collect(self, transfer: RailTransfer) -> RailResult:
        """Pull money in (deposit)."""
        ...

    async def payout(self, transfer: RailTransfer) -> RailResult:
        """Push money out (withdrawal); called by the worker after the settlement delay."""
        ...


class SandboxRail:
    """Completes deposits at once and withdrawals when the worker runs them.

    A transfer whose method is `sandbox:fail` fails, so the FAILED path can be exercised end to
    end (through the API too).
    """

    FAIL_METHOD = "sandbox:fail"

    async def collect(self, transfer: RailTransfer) -> RailResult:
        return self._answer(transfer)

    async def payout(self, transfer: RailTransfer) -> RailResult:
        return self._answer(transfer)

    def _answer(self, transfer: RailTransfer) -> RailResult:
        if transfer.method.strip().lower() == self.FAIL_METHOD:
            return RailResult(RailOutcome.FAILED, "The sandbox rail was told to fail this one.")
        return RailResult(RailOutcome.COMPLETED)
