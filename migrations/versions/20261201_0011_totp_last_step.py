"""users.totp_last_step: the time step of the last TOTP code accepted, so no code works twice

RFC 6238 section 5.2: a verifier must not accept the second use of an OTP it has validated.
A code is accepted only for a step after this one (claimed atomically with the check).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'totp_last_step')
