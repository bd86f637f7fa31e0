"""fills name their orders by UUID

``fills.maker_order_id`` / ``taker_order_id`` become ``uuid`` columns (they join
``orders.id``). The liquidity provider's orders live only in the matching engine (ids
``lp-<n>``): its side of a fill has a NULL order id, as it already has a NULL user id.
Downgrade writes the text back ('' where the id was not ours: the engine's id is gone).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID_TEXT = "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'"


def upgrade() -> None:
    for column in ('maker_order_id', 'taker_order_id'):
        # NULL allowed first: the type change writes NULL for ids that are not ours.
        op.alter_column('fills', column, existing_type=sa.String(length=64), nullable=True)
        op.alter_column(
            'fills', column,
            existing_type=sa.String(length=64),
            type_=sa.Uuid(),
            existing_nullable=True,
            postgresql_using=f"CASE WHEN {column} ~ {UUID_TEXT} THEN {column}::uuid END",
        )


def downgrade() -> None:
    for column in ('maker_order_id', 'taker_order_id'):
        op.alter_column(
            'fills', column,
            existing_type=sa.Uuid(),
            type_=sa.String(length=64),
            existing_nullable=True,
            postgresql_using=f"coalesce({column}::text, '')",
        )
        op.alter_column('fills', column, existing_type=sa.String(length=64), nullable=False)
