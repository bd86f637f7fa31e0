"""assets.split_seq: each asset's stock split count, stamped on the commands planned under it

A split bumps the count in its own transaction and its SPLIT command carries the new count;
placeOrder and replaceOrder stamp the asset's current count on their NEW_ORDER / REPLACE
(read under the asset row's FOR KEY SHARE lock, which the split's FOR UPDATE waits for). The
engine adjusts a command stamped with an older count by the splits it missed
(``matching/core/split.py`` ``catch_up``), so a command planned before a split that reaches the
book after it arrives in post-split terms, as PostgreSQL's rows are.

Revision ID: 0030
Revises: 0026
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0030'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'assets',
        sa.Column('split_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    )
    # The splits already applied (their SPLIT commands carry no count: the engine remembers
    # none of them, so commands stamped with this count are never adjusted for them).
    op.execute(
        "UPDATE assets SET split_seq = s.n FROM ("
        "  SELECT asset_id, count(*) AS n FROM corporate_actions"
        "  WHERE kind = 'STOCK_SPLIT' AND status = 'APPLIED' GROUP BY asset_id"
        ") AS s WHERE s.asset_id = assets.symbol"
    )


def downgrade() -> None:
    op.drop_column('assets', 'split_seq')
