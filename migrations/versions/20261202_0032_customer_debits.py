"""RECEIVABLE ledger accounts (what a customer owes the firm) and DEBIT_BALANCE cases

A settlement that must take back cash a customer no longer has (cash in lieu of a split's
fraction, for a trade in flight at the split) takes what the cash covers and books the rest as
a debit the customer owes: the customer's RECEIVABLE account, the one user account allowed
below zero (never above, never held), and a DEBIT_BALANCE compliance case that freezes
withdrawals until the next deposit repays it (``models/debits.py``).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_ledger_accounts_user_funds_covered"
_OLD = "user_id IS NULL OR (balance >= 0 AND held <= balance)"
# kind::text: PostgreSQL allows ADD VALUE in a transaction as long as the new value is not used
# in it; the constraint compares the label as text, so it does not use the value.
_NEW = (
    "user_id IS NULL OR (balance >= 0 AND held <= balance)"
    " OR (kind::text = 'RECEIVABLE' AND balance <= 0 AND held = 0)"
)


def upgrade() -> None:
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'RECEIVABLE'")
    op.execute("ALTER TYPE compliance_case_kind ADD VALUE IF NOT EXISTS 'DEBIT_BALANCE'")
    op.drop_constraint(op.f(_NAME), "ledger_accounts", type_="check")
    op.create_check_constraint(op.f(_NAME), "ledger_accounts", _NEW)


def downgrade() -> None:
    # The enum labels stay (PostgreSQL cannot drop one); a RECEIVABLE below zero fails this.
    op.drop_constraint(op.f(_NAME), "ledger_accounts", type_="check")
    op.create_check_constraint(op.f(_NAME), "ledger_accounts", _OLD)
