"""matching_epochs: the epoch of each matching shard's Redis state (issue 20)

PostgreSQL is the system of record; a shard whose Redis state is missing, from another epoch or
behind what was settled rebuilds its books from the open orders (matching/rebuild.py,
models/engine_record.py) and records its new epoch here.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'matching_epochs',
        sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('epoch', sa.String(length=32), nullable=False),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('rebuilds', sa.Integer(), nullable=False),
        sa.Column('fence', sa.String(length=32), nullable=True),
        sa.Column('repairs', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('shard', name=op.f('pk_matching_epochs')),
    )


def downgrade() -> None:
    op.drop_table('matching_epochs')
