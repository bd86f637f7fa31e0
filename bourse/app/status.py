"""`bourse status`: each component's health and lag, read off PostgreSQL and Redis (what an
on-call engineer asks first). Exit 0 when everything answers and nothing lags past its bound,
1 otherwise; `--json` for scripts."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bourse.clock import utcnow
from bourse.keys import events_key, heartbeat_key, input_key, marketdata_lease_key
from bourse.settings import Settings
from matching.client import group_lag
from models.orders import OutboxEntry
from models.services import open_services

LAG_BOUND = 1000  # entries behind before a shard or its settlement counts as lagging
OUTBOX_AGE_BOUND_S = 30.0


@dataclass
class Line:
    component: str
    ok: bool
    detail: str
    required: bool = True  # a failing optional component warns; it does not fail the status


async def collect(settings: Settings, database_url: str, redis_url: str) -> list[Line]:
    lines: list[Line] = []
    async with open_services(settings, database_url, redis_url, pool_size=1) as services:
        started = time.perf_counter()
        try:
            async with services.sessionmaker() as s:
                version = await s.scalar(text("SELECT version_num FROM alembic_version"))
                unsent, oldest = (
                    await s.execute(
                        select(func.count(), func.min(OutboxEntry.created_at)).where(
                            OutboxEntry.sent_at.is_(None),
                            OutboxEntry.available_at <= utcnow(),
                        )
                    )
                ).one()
            ms = (time.perf_counter() - started) * 1000
            lines.append(Line("postgresql", True, f"answers in {ms:.0f} ms, migration {version}"))
            age = (utcnow() - oldest).total_seconds() if isinstance(oldest, datetime) else 0.0
            lines.append(
                Line(
                    "outbox",
                    age <= OUTBOX_AGE_BOUND_S,
                    f"{unsent} due command(s) unsent, oldest {age:.0f}s",
                )
            )
        except (SQLAlchemyError, OSError) as exc:
            lines.append(Line("postgresql", False, f"unreachable: {exc}"))
        # Read replicas (models/replicas.py): one measurement now. A replica lagging or down
        # warns: its reads go to the primary meanwhile, so nothing fails.
        replicas = services.replicas
        if replicas.replicas:
            await replicas.check()
        for r in replicas.replicas:
            detail = r.detail if r.available else f"{r.detail}; its reads go to the primary"
            lines.append(Line(f"replica {r.name}", r.available, detail, required=False))
        redis, prefix = services.redis, settings.redis_prefix
        try:
            started = time.perf_counter()
            await redis.ping()
            ms = (time.perf_counter() - started) * 1000
            lines.append(Line("redis", True, f"answers in {ms:.0f} ms"))
        except (RedisError, OSError) as exc:
            lines.append(Line("redis", False, f"unreachable: {exc}"))
            return lines
        for k in range(settings.matching_shards):
            beat = await redis.get(heartbeat_key(prefix, k))
            in_lag = await group_lag(redis, input_key(prefix, k), "matching")
            settle_lag = await group_lag(redis, events_key(prefix, k), "settlement")
            if beat is None:
                lines.append(Line(f"shard-{k}", False, "no heartbeat: not running"))
            else:
                doc = json.loads(beat)
                lines.append(
                    Line(
                        f"shard-{k}",
                        (in_lag or 0) <= LAG_BOUND,
                        f"pid {doc.get('pid')}, applied {doc.get('applied')}, "
                        f"{in_lag if in_lag is not None else '?'} command(s) behind",
                    )
                )
            lines.append(
                Line(
                    f"settlement-{k}",
                    settle_lag is not None and settle_lag <= LAG_BOUND,
                    f"{settle_lag if settle_lag is not None else 'no consumer group'} "
                    "event(s) behind",
                )
            )
        holder = await redis.get(marketdata_lease_key(prefix))
        feed = (
            "lease held" if holder is not None else "no feed holds the lease (prices stand still)"
        )
        lines.append(Line("marketdata-feed", holder is not None, feed, required=False))
    return lines


def render(lines: list[Line], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(line) for line in lines], indent=2)
    width = max(len(line.component) for line in lines)
    return "\n".join(
        f"{'ok  ' if line.ok else 'FAIL' if line.required else 'warn'}  "
        f"{line.component:<{width}}  {line.detail}"
        for line in lines
    )
