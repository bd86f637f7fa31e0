"""Sealed payment methods on fund_transactions (issue 17 item 4)

Expand step, as 0021: `method_sealed` (AES-GCM, models/envelope.py) and its blind index
`method_bidx` beside the plaintext `payment_method` / `withdrawal_method`, and `memo` for a
corporate action's label (what a dividend paid for is no customer's bank detail).
`bourse migrate` / `bourse up` move the legacy values (models/sealing.py) and re-key their
idempotency fingerprints; a later migration drops the old columns.

Revision ID: 0028
Revises: 0020
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('fund_transactions', sa.Column('method_sealed', sa.LargeBinary(), nullable=True))
    op.add_column('fund_transactions', sa.Column('method_bidx', sa.LargeBinary(), nullable=True))
    op.add_column('fund_transactions', sa.Column('memo', sa.String(length=64), nullable=True))
    op.create_index(
        'ix_fund_transactions_user_method', 'fund_transactions', ['user_id', 'method_bidx']
    )


def downgrade() -> None:
    op.drop_index('ix_fund_transactions_user_method', table_name='fund_transactions')
    op.drop_column('fund_transactions', 'memo')
    op.drop_column('fund_transactions', 'method_bidx')
    op.drop_column('fund_transactions', 'method_sealed')
