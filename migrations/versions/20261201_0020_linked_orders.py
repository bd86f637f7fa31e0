"""orders.order_class and orders.parent_id: brackets, OCO and OTO (issue 14 item 5)

A contingent order is one row per order of the group: the row whose NEW_ORDER carries the
others (a bracket's or OTO's entry, an OCO's take-profit) has ``parent_id`` NULL, its legs
name it. ``order_class`` is the group's class on every row (SIMPLE for plain orders).

Revision ID: 0020
Revises: 0023
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0020'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

order_class = postgresql.ENUM('SIMPLE', 'BRACKET', 'OCO', 'OTO', name='order_class')


def upgrade() -> None:
    order_class.create(op.get_bind(), checkfirst=True)
    op.add_column(
        'orders',
        sa.Column(
            'order_class',
            postgresql.ENUM(name='order_class', create_type=False),
            server_default='SIMPLE',
            nullable=False,
        ),
    )
    op.add_column('orders', sa.Column('parent_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f('fk_orders_parent_id_orders'), 'orders', 'orders', ['parent_id'], ['id']
    )
    op.create_index(
        'ix_orders_parent_id',
        'orders',
        ['parent_id'],
        postgresql_where=sa.text('parent_id IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_parent_id', table_name='orders')
    op.drop_constraint(op.f('fk_orders_parent_id_orders'), 'orders', type_='foreignkey')
    op.drop_column('orders', 'parent_id')
    op.drop_column('orders', 'order_class')
    order_class.drop(op.get_bind(), checkfirst=True)
