"""data_keys and sealed personal data on users (issue 17 item 4: envelope encryption)

Expand step of an expand/contract change: the sealed columns are added beside the plaintext
(or Fernet) ones they replace; `bourse migrate` / `bourse up` then move any legacy values into
them (models/sealing.py, which holds the keys this migration cannot) and null the old columns.
A later migration drops the old columns once every deployment has run that pass.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-01 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED = (
    'phone_sealed', 'date_of_birth_sealed', 'address_sealed',
    'totp_secret_sealed', 'totp_pending_secret_sealed',
)


def upgrade() -> None:
    op.create_table(
        'data_keys',
        sa.Column('id', sa.Integer(), sa.Identity(always=True), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('kek_id', sa.String(length=64), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rewrapped_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_data_keys')),
    )
    op.create_index(
        'uq_data_keys_active', 'data_keys', ['purpose'], unique=True,
        postgresql_where=sa.text('active'),
    )
    for column in SEALED:
        op.add_column('users', sa.Column(column, sa.LargeBinary(), nullable=True))
    op.drop_constraint(op.f('ck_users_two_factor_secret'), 'users', type_='check')
    op.create_check_constraint(
        op.f('ck_users_two_factor_secret'), 'users',
        '(two_factor_enabled = false) OR (totp_secret_sealed IS NOT NULL)'
        ' OR (totp_secret_enc IS NOT NULL)',
    )


def downgrade() -> None:
    op.drop_constraint(op.f('ck_users_two_factor_secret'), 'users', type_='check')
    op.create_check_constraint(
        op.f('ck_users_two_factor_secret'), 'users',
        '(two_factor_enabled = false) OR (totp_secret_enc IS NOT NULL)',
    )
    for column in SEALED:
        op.drop_column('users', column)
    op.drop_index('uq_data_keys_active', table_name='data_keys')
    op.drop_table('data_keys')
