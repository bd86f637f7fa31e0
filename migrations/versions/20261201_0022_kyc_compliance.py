"""KYC profiles, compliance cases, fraud holds and the COMPLIANCE role (issue 17 items 1-3)

`kyc_status` gains NOT_SUBMITTED (now a new account's state) and NEEDS_REVIEW. No account could
submit anything before this revision, so every PENDING row becomes NOT_SUBMITTED: PENDING now
means "submitted, awaiting the provider". VERIFIED and REJECTED rows (set by hand) stay.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_KINDS = (
    'SANCTIONS_HIT', 'DUPLICATE_TAX_ID', 'KYC_REVIEW', 'STRUCTURING', 'RAPID_IN_OUT',
    'NEW_METHOD_AFTER_CHANGE', 'WITHDRAWAL_HELD',
)


def upgrade() -> None:
    # A value added to an enum cannot be used in the transaction that adds it.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE kyc_status ADD VALUE IF NOT EXISTS 'NOT_SUBMITTED'")
        op.execute("ALTER TYPE kyc_status ADD VALUE IF NOT EXISTS 'NEEDS_REVIEW'")
        op.execute("ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'COMPLIANCE'")
    op.execute("UPDATE users SET kyc_status = 'NOT_SUBMITTED' WHERE kyc_status = 'PENDING'")
    op.add_column('users', sa.Column('security_changed_at', sa.DateTime(timezone=True)))
    op.add_column('users', sa.Column('profile_changed_at', sa.DateTime(timezone=True)))
    op.add_column('fund_transactions', sa.Column('hold_reason', sa.String(length=32)))

    kyc_status = postgresql.ENUM(name='kyc_status', create_type=False)
    op.create_table(
        'kyc_profiles',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('legal_first_name', sa.String(length=100), nullable=False),
        sa.Column('legal_last_name', sa.String(length=100), nullable=False),
        sa.Column('citizenship', sa.String(length=2), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('tax_id_kind', sa.String(length=8), nullable=False),
        sa.Column('tax_id_sealed', sa.LargeBinary(), nullable=False),
        sa.Column('tax_id_bidx', sa.LargeBinary(length=32), nullable=False),
        sa.Column('date_of_birth_sealed', sa.LargeBinary(), nullable=False),
        sa.Column('address_sealed', sa.LargeBinary(), nullable=False),
        sa.Column('status', kyc_status, nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('provider_reference', sa.String(length=128), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('screened_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_kyc_profiles_user_id_users'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_kyc_profiles')),
    )
    op.create_index('ix_kyc_profiles_tax_id_bidx', 'kyc_profiles', ['tax_id_bidx'])

    kind = postgresql.ENUM(*CASE_KINDS, name='compliance_case_kind')
    status = postgresql.ENUM('OPEN', 'ESCALATED', 'CLEARED', 'CLOSED', name='compliance_case_status')
    decision = postgresql.ENUM('CLEAR', 'ESCALATE', 'CLOSE_ACCOUNT', name='compliance_decision')
    op.create_table(
        'compliance_cases',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('kind', kind, nullable=False),
        sa.Column('status', status, nullable=False),
        sa.Column('freezes', sa.Boolean(), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('transaction_id', sa.Uuid(), nullable=True),
        sa.Column('decision', decision, nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('resolved_by', sa.Uuid(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_compliance_cases_user_id_users'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_cases')),
    )
    op.create_index(
        'uq_compliance_cases_open', 'compliance_cases', ['user_id', 'kind', 'dedupe_key'],
        unique=True, postgresql_where=sa.text("status IN ('OPEN', 'ESCALATED')"),
    )
    op.create_index(
        'ix_compliance_cases_status_created', 'compliance_cases', ['status', 'created_at', 'id']
    )
    op.create_index('ix_compliance_cases_user', 'compliance_cases', ['user_id', 'created_at'])


def downgrade() -> None:
    op.drop_table('compliance_cases')
    op.execute('DROP TYPE compliance_case_kind')
    op.execute('DROP TYPE compliance_case_status')
    op.execute('DROP TYPE compliance_decision')
    op.drop_table('kyc_profiles')
    op.drop_column('fund_transactions', 'hold_reason')
    op.drop_column('users', 'profile_changed_at')
    op.drop_column('users', 'security_changed_at')
    op.execute("UPDATE users SET kyc_status = 'PENDING' WHERE kyc_status IN ('NOT_SUBMITTED', 'NEEDS_REVIEW')")
    # PostgreSQL cannot drop an enum value; NOT_SUBMITTED, NEEDS_REVIEW and COMPLIANCE stay.
