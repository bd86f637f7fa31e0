"""fix_partners, fix_sessions, fix_outbound (issue 18 item 4: the FIX 4.4 gateway)

Revision ID: 0023
Revises: 0024
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'fix_partners',
        sa.Column('sender_comp_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_fix_partners_user_id_users')
        ),
        sa.PrimaryKeyConstraint('sender_comp_id', name=op.f('pk_fix_partners')),
    )
    op.create_table(
        'fix_sessions',
        sa.Column('sender_comp_id', sa.String(length=32), nullable=False),
        sa.Column('next_in', sa.Integer(), nullable=False),
        sa.Column('next_out', sa.Integer(), nullable=False),
        sa.Column('event_cursor', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['sender_comp_id'], ['fix_partners.sender_comp_id'],
            name=op.f('fk_fix_sessions_sender_comp_id_fix_partners'),
        ),
        sa.PrimaryKeyConstraint('sender_comp_id', name=op.f('pk_fix_sessions')),
    )
    op.create_table(
        'fix_outbound',
        sa.Column('sender_comp_id', sa.String(length=32), nullable=False),
        sa.Column('seq_num', sa.Integer(), nullable=False),
        sa.Column('msg_type', sa.String(length=4), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['sender_comp_id'], ['fix_partners.sender_comp_id'],
            name=op.f('fk_fix_outbound_sender_comp_id_fix_partners'),
        ),
        sa.PrimaryKeyConstraint('sender_comp_id', 'seq_num', name=op.f('pk_fix_outbound')),
    )


def downgrade() -> None:
    op.drop_table('fix_outbound')
    op.drop_table('fix_sessions')
    op.drop_table('fix_partners')
