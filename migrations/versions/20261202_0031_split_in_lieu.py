"""corporate_actions.split_price, corporate_action_entries.in_lieu_quantity

A split's cash in lieu price (the split-adjusted reference price it paid fractions at) is kept
on the action, and each holder's entry keeps the fraction it was paid in lieu of (post-split
shares): a trade the engine made before the split but settled after it (in flight) is then
settled so the customer ends with whole increments and cash in lieu exactly as if it had
settled before the split (``models/split_in_flight.py``).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("corporate_actions", sa.Column("split_price", sa.Numeric(38, 18), nullable=True))
    op.add_column(
        "corporate_action_entries",
        sa.Column(
            "in_lieu_quantity", sa.Numeric(38, 18), server_default=sa.text("0"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("corporate_action_entries", "in_lieu_quantity")
    op.drop_column("corporate_actions", "split_price")
