"""Where the services are: the configured URLs, or embedded servers under var/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bourse.settings import Settings

EMBEDDED_BUCKET = "bourse-documents"


@dataclass(frozen=True, slots=True)
class EmbeddedS3Store:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded: bool
    s3: EmbeddedS3Store | None = None  # set when the S3 store is the embedded one

    def apply(self, settings: Settings) -> Settings:
        """``settings`` pointing at the embedded S3 store when that is the one serving."""
        if self.s3 is None:
            return settings
        return settings.model_copy(
            update={
                "s3_endpoint_url": self.s3.endpoint_url,
                "s3_access_key_id": self.s3.access_key_id,
                "s3_secret_access_key": self.s3.secret_access_key,
                "s3_bucket": settings.s3_bucket or EMBEDDED_BUCKET,
            }
        )


def wants_embedded_s3(settings: Settings) -> bool:
    return not settings.s3_endpoint_url and not settings.s3_bucket


@contextmanager
def service_urls(settings: Settings, *, s3: bool = True) -> Iterator[ServiceUrls]:
    """Yield usable URLs; embedded servers started here are stopped on exit.

    A server already started by another `bourse` process on the same var/ is reused and left
    running (so `bourse admin create` works beside a running `bourse up`). ``s3=False``: the
    caller stores no documents, so no S3 store is started for it.
    """
    embedded_s3 = s3 and wants_embedded_s3(settings)
    if settings.database_url and settings.redis_url and not embedded_s3:
        yield ServiceUrls(settings.database_url, settings.redis_url, embedded=False)
        return
    from bourse.embedded import embedded_services

    with embedded_services(
        settings.var_dir,
        postgres=not settings.database_url,
        redis=not settings.redis_url,
        s3=embedded_s3,
        pg_archive_timeout=settings.pg_archive_timeout_seconds,
    ) as urls:
        database_url = settings.database_url or urls.database_url
        redis_url = settings.redis_url or urls.redis_url
        assert database_url
        assert redis_url
        store = None
        if urls.s3_url and urls.s3_credentials:
            creds = urls.s3_credentials
            store = EmbeddedS3Store(urls.s3_url, creds.access_key_id, creds.secret_access_key)
        embedded = not (settings.database_url and settings.redis_url)
        yield ServiceUrls(database_url, redis_url, embedded=embedded, s3=store)
