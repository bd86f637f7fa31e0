"""assets.volatility: annualised volatility as reference data (the synthetic feed's sigma)

Until now the feed read it from the demo data module; production code no longer imports demo
data, so the demo loader stores it on the asset instead. Null means the provider's default.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('assets', sa.Column('volatility', sa.Numeric(precision=8, scale=4), nullable=True))


def downgrade() -> None:
    op.drop_column('assets', 'volatility')
