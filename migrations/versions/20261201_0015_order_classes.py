"""order replacements and trailing stops: replaceOrder's requests, an order's trail

`order_replacements` holds each replaceOrder request (its id is the engine's replace id) until
the settlement applies the shard's REPLACED or REPLACE_REJECTED event; at most one is pending
per order. `orders` gains the trail of a TRAILING_STOP (percent or amount); its `stop_price`
is the current stop, moved by the shard's STOP_MOVED events.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

time_in_force = postgresql.ENUM(
    'GTC', 'DAY', 'IOC', 'FOK', name='time_in_force', create_type=False
)


def upgrade() -> None:
    # New enum values may be added in a transaction (PostgreSQL 12+); used only after commit.
    op.execute("ALTER TYPE order_sub_type ADD VALUE IF NOT EXISTS 'TRAILING_STOP'")
    op.add_column('orders', sa.Column('trail_percent', sa.Numeric(38, 18), nullable=True))
    op.add_column('orders', sa.Column('trail_amount', sa.Numeric(38, 18), nullable=True))
    op.create_table(
        'order_replacements',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('quantity', sa.Numeric(38, 18), nullable=False),
        sa.Column('price', sa.Numeric(38, 18), nullable=True),
        sa.Column('stop_price', sa.Numeric(38, 18), nullable=True),
        sa.Column('time_in_force', time_in_force, nullable=False),
        sa.Column('trail_percent', sa.Numeric(38, 18), nullable=True),
        sa.Column('trail_amount', sa.Numeric(38, 18), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=True),
        sa.Column('kept_priority', sa.Boolean(), nullable=True),
        sa.Column('hold_added', sa.Numeric(38, 18), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['order_id'], ['orders.id'], name=op.f('fk_order_replacements_order_id_orders')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_replacements')),
    )
    op.create_index(
        'uq_order_replacements_pending',
        'order_replacements',
        ['order_id'],
        unique=True,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        'ix_order_replacements_order', 'order_replacements', ['order_id', 'created_at']
    )


def downgrade() -> None:
    op.drop_index('ix_order_replacements_order', table_name='order_replacements')
    op.drop_index('uq_order_replacements_pending', table_name='order_replacements')
    op.drop_table('order_replacements')
    op.drop_column('orders', 'trail_amount')
    op.drop_column('orders', 'trail_percent')
    # PostgreSQL cannot drop an enum value: 'TRAILING_STOP' stays in order_sub_type.
