"""The candles' partition DDL: ``candles`` is partitioned by LIST on the interval, each
interval by RANGE on ``bucket_start`` (monthly for 1m/5m, yearly for 1h/1d), the partitions in
the ``candle_partitions`` schema, created on demand by writers and ahead of time by the
maintenance job (docs/ARCHITECTURE.md, "History, summary and news").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from models.candles import (
    PARTITION_SCHEMA,
    CandleInterval,
)


@dataclass(frozen=True, slots=True)
class Partition:
    interval: CandleInterval
    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        suffix = self.start.strftime("%Y%m" if self.interval.monthly_partitions else "%Y")
        return f"candles_{self.interval.value}_{suffix}"

    @classmethod
    def holding(cls, interval: CandleInterval, t: datetime) -> Partition:
        t = t.astimezone(UTC)
        if interval.monthly_partitions:
            start = datetime(t.year, t.month, 1, tzinfo=UTC)
            end = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
        else:
            start = datetime(t.year, 1, 1, tzinfo=UTC)
            end = datetime(t.year + 1, 1, 1, tzinfo=UTC)
        return cls(interval, start, end)

    @classmethod
    def parse(cls, name: str) -> Partition | None:
        parts = name.split("_")
        if len(parts) != 3 or parts[0] != "candles":
            return None
        try:
            interval = CandleInterval(parts[1])
            if interval.monthly_partitions and len(parts[2]) == 6:
                t = datetime(int(parts[2][:4]), int(parts[2][4:]), 1, tzinfo=UTC)
            elif not interval.monthly_partitions and len(parts[2]) == 4:
                t = datetime(int(parts[2]), 1, 1, tzinfo=UTC)
            else:
                return None
        except ValueError:
            return None
        return cls.holding(interval, t)


def partitions_between(interval: CandleInterval, start: datetime, end: datetime) -> list[Partition]:
    """Every partition of ``interval`` touching ``[start, end]``."""
    out = [Partition.holding(interval, start)]
    while out[-1].end <= end:
        out.append(Partition.holding(interval, out[-1].end))
    return out


def _sub_parent(interval: CandleInterval) -> str:
    return f"{PARTITION_SCHEMA}.candles_{interval.value}"


# Serialises partition DDL between processes (creating one twice at once fails).
PARTITION_LOCK_ID = 0x63616E646C6573  # "candles"


async def create_partitions(conn: AsyncConnection, wanted: Iterable[Partition]) -> list[str]:
    """Create the missing ``wanted`` partitions (in the caller's transaction); their names."""
    wanted = sorted(set(wanted), key=lambda p: (p.interval.value, p.start))
    if not wanted:
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PARTITION_LOCK_ID})
    existing = set(
        (
            await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                {"s": PARTITION_SCHEMA},
            )
        ).scalars()
    )
    made = []
    for p in wanted:
        if p.name in existing:
            continue
        # Names and bounds come from our own enum and datetimes, never from input.
        await conn.execute(
            text(
                f"CREATE TABLE {PARTITION_SCHEMA}.{p.name} PARTITION OF {_sub_parent(p.interval)} "
                f"FOR VALUES FROM ('{p.start.isoformat()}') TO ('{p.end.isoformat()}')"
            )
        )
        made.append(p.name)
    return made


async def existing_partitions(conn: AsyncConnection) -> list[Partition]:
    names = (
        await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": PARTITION_SCHEMA}
        )
    ).scalars()
    found = [Partition.parse(n) for n in names]
    return sorted((p for p in found if p), key=lambda p: (p.interval.value, p.start))
