"""The epoch PostgreSQL knows for each matching shard's Redis state (``matching/record.py``).

One row per shard: the epoch the shard last rebuilt from PostgreSQL (or adopted as it was), and
when. A shard whose Redis epoch differs from this row's rebuilds; the actions are in
``models/engine_record.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models.base import Base


class MatchingEpoch(Base):
    __tablename__ = "matching_epochs"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[str] = mapped_column(String(32))
    # How the epoch began: "rebuilt" (from the open orders) or "adopted" (Redis kept its state).
    origin: Mapped[str] = mapped_column(String(16))
    orders: Mapped[int] = mapped_column(Integer, default=0)  # open orders the rebuild restored
    rebuilds: Mapped[int] = mapped_column(Integer, default=0)  # of this shard, ever
    fence: Mapped[str | None] = mapped_column(String(32))  # settlement stopped at this entry
    repairs: Mapped[int] = mapped_column(Integer, default=0)  # the reconciler's, ever
    # When this epoch began: the orders open then were all in its rebuild (or in the adopted
    # state), so the reconciler looks for missing orders placed since.
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
