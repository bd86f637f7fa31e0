"""What customers owe the firm: a debit balance, booked when a settlement must take cash a
customer does not have, recovered first from its next deposit.

Settlement never stalls for a customer's cash. A trade in flight at a stock split can take
more cash than the customer's order reserved: the cash in lieu it pays back
(``models/split_in_flight.py``: the split paid a fraction the trade then delivered), and the
trade itself beyond the hold the split floored (an order the engine had filled, rounded down
to the lot by the split: the customer could spend the difference before the settlement). When
a batch would leave such a party's cash below what it has reserved or below zero, the firm
advances the difference, in the same batch:

- one ``DEBIT_BALANCE`` journal entry moves the shortfall from the customer's **RECEIVABLE**
  ledger account (one per user and currency, created on first use) to its cash: the ledger
  says who owes what, every entry balances, and the account's CHECK (``USER_FUNDS_COVERED``)
  lets a RECEIVABLE (and only it) go below zero, never above, so ``ledger check`` stays clean;
- a **DEBIT_BALANCE compliance case** is opened (one open case per user and currency), which
  freezes the customer's withdrawals while it is open: operators and compliance see every
  debit in their case queue with its amount, split and fill, and no cash leaves an account
  that owes the firm; the customer is notified;
- the customer's next **deposit** in that currency repays it first, in the deposit's
  transaction (a ``DEBIT_RECOVERY`` journal entry: cash to the RECEIVABLE); once nothing is
  owed, the case is cleared by the system (decision ``CLEAR``, the note names the deposit),
  which lifts the freeze (unless a reviewer escalated it: then the reviewer decides).

Lock order: the customer's cash account, then its RECEIVABLE (the settlement has locked every
account of the batch first; the deposit's posting has locked the cash).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bourse.clock import utcnow
from bourse.money import plain
from models.cases import Finding, open_case
from models.compliance_tables import (
    CaseDecision,
    CaseKind,
    CaseStatus,
    ComplianceCase,
)
from models.ledger import ZERO, AccountKind, Ledger, LedgerAccount, LedgerBatch, Leg
from models.notifications.actions import Draft
from models.notifications.messages import debit_draft

log = structlog.get_logger("bourse.debits")
DEBIT_NAMESPACE = uuid.UUID("3c0d7f4e-2a61-4f0b-9c1e-8d5b6a7e9f21")
DEBIT_KIND = "DEBIT_BALANCE"  # the journal entry booking a debit owed
RECOVERY_KIND = "DEBIT_RECOVERY"  # the journal entry repaying it from a deposit


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Cash a settlement took beyond what a customer had: advanced, and owed by the customer."""

    user_id: uuid.UUID
    currency: str
    cash_account: uuid.UUID
    amount: Decimal
    action_id: uuid.UUID  # the split the trade was in flight at
    fill_id: str  # the trade


def dedupe_key(currency: str) -> str:
    return f"debit:{currency}"


async def record_shortfalls(
    s: AsyncSession, ledger: Ledger, batch: LedgerBatch, shortfalls: list[Shortfall]
) -> list[Draft]:
    """Book each shortfall in the settlement's batch (the customer's RECEIVABLE down, its cash
    up), open the customer's DEBIT_BALANCE case; the customers' notifications to record."""
    drafts = []
    for f in shortfalls:
        receivable = await ledger.account_id(s, f.user_id, AccountKind.RECEIVABLE, f.currency)
        await ledger.lock(s, [receivable])
        batch.post(
            DEBIT_KIND,
            [Leg(receivable, f.currency, -f.amount), Leg(f.cash_account, f.currency, f.amount)],
            user_id=f.user_id,
            reference_id=uuid.uuid5(DEBIT_NAMESPACE, f.fill_id),
        )
        amount = str(plain(f.amount))
        await open_case(
            s,
            f.user_id,
            Finding(
                CaseKind.DEBIT_BALANCE,
                f"The customer owes {amount} {f.currency}: a trade settled after a stock split "
                "took that much cash beyond what was available (cash in lieu paid back). "
                "Withdrawals are frozen until it is repaid; the next deposit repays it first.",
                dedupe_key(f.currency),
                freezes=True,
                details={
                    "amount": amount,
                    "currency": f.currency,
                    "corporate_action_id": str(f.action_id),
                    "fill_id": f.fill_id,
                },
            ),
        )
        drafts.append(debit_draft(f.user_id, f.amount, f.currency, f.fill_id))
        log.warning(
            "settlement: cash shortfall booked as a debit owed",
            user_id=str(f.user_id),
            amount=amount,
            currency=f.currency,
            fill_id=f.fill_id,
        )
    return drafts


async def owed(s: AsyncSession, user_id: uuid.UUID, currency: str) -> Decimal:
    """What the customer owes the firm in that currency (0 when nothing)."""
    balance = await s.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.user_id == user_id,
            LedgerAccount.kind == AccountKind.RECEIVABLE,
            LedgerAccount.asset == currency,
        )
    )
    return -balance if balance is not None and balance < 0 else ZERO


async def recover_from_deposit(
    s: AsyncSession,
    ledger: Ledger,
    user_id: uuid.UUID,
    currency: str,
    cash_account: uuid.UUID,
    amount: Decimal,
    deposit_id: uuid.UUID,
) -> Decimal:
    """Repay the customer's debit from a deposit just posted (its cash account locked by that
    posting), in the deposit's transaction; returns what was repaid."""
    row = (
        await s.execute(
            select(LedgerAccount.id, LedgerAccount.balance)
            .where(
                LedgerAccount.user_id == user_id,
                LedgerAccount.kind == AccountKind.RECEIVABLE,
                LedgerAccount.asset == currency,
            )
            .with_for_update(key_share=True)
        )
    ).one_or_none()
    if row is None or row.balance >= 0:
        return ZERO
    balance: Decimal = row.balance
    repaid = min(-balance, amount)
    if repaid <= 0:
        return ZERO
    await ledger.post(
        s,
        RECOVERY_KIND,
        [Leg(cash_account, currency, -repaid), Leg(row.id, currency, repaid)],
        user_id=user_id,
        reference_id=deposit_id,
    )
    if repaid == -balance:  # nothing owed any more: the case is done, the freeze lifted
        now = utcnow()
        await s.execute(
            update(ComplianceCase)
            .where(
                ComplianceCase.user_id == user_id,
                ComplianceCase.kind == CaseKind.DEBIT_BALANCE,
                ComplianceCase.dedupe_key == dedupe_key(currency),
                ComplianceCase.status == CaseStatus.OPEN,  # an escalated one: a reviewer's
            )
            .values(
                status=CaseStatus.CLEARED,
                decision=CaseDecision.CLEAR,
                note=f"Repaid in full by deposit {deposit_id}.",
                resolved_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return repaid


__all__ = [
    "DEBIT_KIND",
    "RECOVERY_KIND",
    "Shortfall",
    "owed",
    "record_shortfalls",
    "recover_from_deposit",
]
