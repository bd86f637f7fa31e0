"""position_fills by (user_id, executed_at)

A statement and a 1099-B read one user's fills of a period; the table's key begins with the
fill id, so each read scanned the whole table (the statements bench: 28 ms of a statement's
55 at 3,000 accounts, growing with the table). Built CONCURRENTLY: the table takes writes from
settlement all the while.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-01 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_position_fills_user_executed', 'position_fills', ['user_id', 'executed_at'],
            postgresql_concurrently=True, if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            'ix_position_fills_user_executed', table_name='position_fills',
            postgresql_concurrently=True, if_exists=True,
        )
