"""Where the services are: the configured URLs, or embedded servers under var/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bourse.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded: bool


@contextmanager
def service_urls(settings: Settings) -> Iterator[ServiceUrls]:
    """Yield usable URLs; embedded servers started here are stopped on exit.

    A server already started by another `bourse` process on the same var/ is reused and left
    running (so `bourse admin create` works beside a running `bourse up`).
    """
    if settings.database_url and settings.redis_url:
        yield ServiceUrls(settings.database_url, settings.redis_url, embedded=False)
        return
    from bourse.embedded import embedded_services

    with embedded_services(
        settings.var_dir, postgres=not settings.database_url, redis=not settings.redis_url
    ) as urls:
        database_url = settings.database_url or urls.database_url
        redis_url = settings.redis_url or urls.redis_url
        assert database_url
        assert redis_url
        yield ServiceUrls(database_url, redis_url, embedded=True)
