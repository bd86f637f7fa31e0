"""recurring_investments and recurring_runs: buy a fixed amount every period, exactly once

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

frequency = postgresql.ENUM(
    'DAILY', 'WEEKLY', 'BIWEEKLY', 'MONTHLY', name='recurring_frequency', create_type=False
)
status = postgresql.ENUM('ACTIVE', 'PAUSED', 'CANCELLED', name='recurring_status', create_type=False)
run_status = postgresql.ENUM('PLACED', 'SKIPPED', name='recurring_run_status', create_type=False)


def upgrade() -> None:
    bind = op.get_bind()
    for enum in (frequency, status, run_status):
        enum.create(bind, checkfirst=True)
    op.create_table(
        'recurring_investments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('asset_id', sa.String(length=16), nullable=False),
        sa.Column('notional', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('frequency', frequency, nullable=False),
        sa.Column('anchor', sa.Date(), nullable=False),
        sa.Column('next_run_on', sa.Date(), nullable=False),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', status, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.symbol'], name=op.f('fk_recurring_investments_asset_id_assets')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recurring_investments_user_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_investments')),
    )
    op.create_index('ix_recurring_user', 'recurring_investments', ['user_id', 'created_at'], unique=False)
    op.create_index('ix_recurring_due', 'recurring_investments', ['next_run_at'], unique=False, postgresql_where=sa.text("status = 'ACTIVE'"))
    op.create_table(
        'recurring_runs',
        sa.Column('plan_id', sa.Uuid(), nullable=False),
        sa.Column('period', sa.Date(), nullable=False),
        sa.Column('status', run_status, nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=True),
        sa.Column('reason', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['plan_id'], ['recurring_investments.id'], name=op.f('fk_recurring_runs_plan_id_recurring_investments')),
        sa.PrimaryKeyConstraint('plan_id', 'period', name='pk_recurring_runs'),
    )


def downgrade() -> None:
    op.drop_table('recurring_runs')
    op.drop_index('ix_recurring_due', table_name='recurring_investments')
    op.drop_index('ix_recurring_user', table_name='recurring_investments')
    op.drop_table('recurring_investments')
    bind = op.get_bind()
    for enum in (run_status, status, frequency):
        enum.drop(bind, checkfirst=True)
