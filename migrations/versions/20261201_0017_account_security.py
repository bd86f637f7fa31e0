"""email_change_requests and users.closed_at (issue 17)

A new email address waits for its owner's confirmation (a stolen access token must not take the
account): one pending request per user. A closed account keeps its records, its profile
pseudonymised (models/closure.py).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'email_change_requests',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('new_email', sa.String(), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_email_change_requests_user_id_users'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_email_change_requests')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_email_change_requests_token_hash')),
        sa.UniqueConstraint('user_id', name=op.f('uq_email_change_requests_user_id')),
    )


    op.add_column('users', sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'closed_at')
    op.drop_table('email_change_requests')
