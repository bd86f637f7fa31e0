"""Partners (issue 18): API keys, partner apps (OAuth2 clients), consents, codes, tokens,
and the trusted-document store with each partner's registered documents.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 17:15:10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('partner_apps',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('redirect_uris', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=16)), nullable=False),
    sa.Column('requests_per_minute', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_apps')),
    sa.UniqueConstraint('client_id', name=op.f('uq_partner_apps_client_id')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_partner_apps_secret_hash'))
    )
    op.create_table('trusted_documents',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('canonical_hash', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_trusted_documents'))
    )
    op.create_index(op.f('ix_trusted_documents_canonical_hash'), 'trusted_documents', ['canonical_hash'], unique=False)
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=16)), nullable=False),
    sa.Column('requests_per_minute', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_api_keys_secret_hash'))
    )
    op.create_index('ix_api_keys_user', 'api_keys', ['user_id', 'created_at'], unique=False)
    op.create_table('oauth_grants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('app_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=16)), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['partner_apps.id'], name=op.f('fk_oauth_grants_app_id_partner_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_grants'))
    )
    op.create_index('ix_oauth_grants_user', 'oauth_grants', ['user_id', 'created_at'], unique=False)
    op.create_index('uq_oauth_grants_app_user_live', 'oauth_grants', ['app_id', 'user_id'], unique=True, postgresql_where='revoked_at IS NULL')
    op.create_table('partner_documents',
    sa.Column('app_id', sa.Uuid(), nullable=False),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('canonical_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['partner_apps.id'], name=op.f('fk_partner_documents_app_id_partner_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['document_hash'], ['trusted_documents.hash'], name=op.f('fk_partner_documents_document_hash_trusted_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('app_id', 'document_hash', name=op.f('pk_partner_documents'))
    )
    op.create_index('ix_partner_documents_canonical', 'partner_documents', ['app_id', 'canonical_hash'], unique=False)
    op.create_table('oauth_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], name=op.f('fk_oauth_codes_grant_id_oauth_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_oauth_codes_code_hash'))
    )
    op.create_index(op.f('ix_oauth_codes_grant_id'), 'oauth_codes', ['grant_id'], unique=False)
    op.create_table('oauth_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('app_id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=True),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=16)), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['partner_apps.id'], name=op.f('fk_oauth_tokens_app_id_partner_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], name=op.f('fk_oauth_tokens_grant_id_oauth_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_oauth_tokens_token_hash'))
    )
    op.create_index(op.f('ix_oauth_tokens_app_id'), 'oauth_tokens', ['app_id'], unique=False)
    op.create_index(op.f('ix_oauth_tokens_grant_id'), 'oauth_tokens', ['grant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_oauth_tokens_grant_id'), table_name='oauth_tokens')
    op.drop_index(op.f('ix_oauth_tokens_app_id'), table_name='oauth_tokens')
    op.drop_table('oauth_tokens')
    op.drop_index(op.f('ix_oauth_codes_grant_id'), table_name='oauth_codes')
    op.drop_table('oauth_codes')
    op.drop_index('ix_partner_documents_canonical', table_name='partner_documents')
    op.drop_table('partner_documents')
    op.drop_index('uq_oauth_grants_app_user_live', table_name='oauth_grants', postgresql_where='revoked_at IS NULL')
    op.drop_index('ix_oauth_grants_user', table_name='oauth_grants')
    op.drop_table('oauth_grants')
    op.drop_index('ix_api_keys_user', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_index(op.f('ix_trusted_documents_canonical_hash'), table_name='trusted_documents')
    op.drop_table('trusted_documents')
    op.drop_table('partner_apps')
