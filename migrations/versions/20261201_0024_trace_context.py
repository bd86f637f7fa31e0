"""order_outbox.trace_parent: the W3C traceparent sent beside each command (issue 20 item 4)

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('order_outbox', sa.Column('trace_parent', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('order_outbox', 'trace_parent')
