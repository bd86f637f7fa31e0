"""corporate_actions.engine_applied_at and assets.splitting: a split until the engine has it

A stock split adjusts PostgreSQL in its own transaction and the matching books through a SPLIT
command (``models/corporate_actions.py``). Until the settlement has applied the engine's
SPLIT_APPLIED event (this column set), a fill of the asset comes from before the split in the
engine's order (it was in flight when the split committed) and is settled in post-split shares
(``models/settlement.py``). ``assets.splitting`` is set meanwhile: no new order or replace of
the asset until the settlement has seen SPLIT_APPLIED (it clears the flag).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'assets',
        sa.Column('splitting', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        'corporate_actions',
        sa.Column('engine_applied_at', sa.DateTime(timezone=True), nullable=True),
    )
    # Splits applied before this column existed were refused with open orders: nothing of
    # theirs can still be in flight.
    op.execute(
        "UPDATE corporate_actions SET engine_applied_at = applied_at "
        "WHERE kind = 'STOCK_SPLIT' AND status = 'APPLIED'"
    )


def downgrade() -> None:
    op.drop_column('corporate_actions', 'engine_applied_at')
    op.drop_column('assets', 'splitting')
