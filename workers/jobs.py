"""The arq worker: which jobs exist and how a worker is built (in `bourse up` or standalone)."""

from __future__ import annotations

from arq.connections import RedisSettings
from arq.worker import Worker

from bourse.services import arq_queue_name
from bourse.settings import Settings
from workers.email import send_email

FUNCTIONS = [send_email]


def build_worker(settings: Settings, redis_url: str, *, burst: bool = False) -> Worker:
    return Worker(
        functions=FUNCTIONS,
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=arq_queue_name(settings),
        ctx={"settings": settings},
        handle_signals=False,  # the host process (bourse up) owns signals
        burst=burst,
        max_jobs=20,
        job_timeout=60,
        keep_result=3600,
    )
