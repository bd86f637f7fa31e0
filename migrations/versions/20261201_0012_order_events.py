"""order_events: every orderUpdates event, durable, with an increasing cursor

The settlement writes each notice here in the transaction that made it, before publishing it;
`orderUpdates(after:)` replays from here, then continues live without gaps or duplicates.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'order_events',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events')),
    )
    op.create_index('ix_order_events_user', 'order_events', ['user_id', 'id'], unique=False)
    op.create_index('ix_order_events_created', 'order_events', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_order_events_created', table_name='order_events')
    op.drop_index('ix_order_events_user', table_name='order_events')
    op.drop_table('order_events')
