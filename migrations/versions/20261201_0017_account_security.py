"""email_change_requests, users.closed_at and the append-only audit_events (issue 17)

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
    op.create_table(
        'audit_events',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=200), nullable=False),
        sa.Column('actor_id', sa.Uuid(), nullable=True),
        sa.Column('subject_id', sa.Uuid(), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    )
    op.create_index('ix_audit_events_actor', 'audit_events', ['actor_id', 'id'])
    op.create_index('ix_audit_events_subject', 'audit_events', ['subject_id', 'id'])
    # Append-only, whoever connects: UPDATE, DELETE and TRUNCATE raise (models/audit.py).
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )


def downgrade() -> None:
    op.execute('DROP TABLE audit_events')  # its triggers go with it
    op.execute('DROP FUNCTION audit_events_append_only()')
    op.drop_column('users', 'closed_at')
    op.drop_table('email_change_requests')
