"""Object storage: the one small interface over boto3 (S3) that documents are kept in.

- Objects are private: nothing is public-read; a download is a presigned GET URL that lives
  ``document_url_ttl_seconds`` (or the BFF streams the object after its own ownership check).
- Server-side encryption (``AES256`` by default) is asked for on every write where the store
  supports it; a store that refuses the header gets the object without it, and that is logged.
- boto3 is synchronous: each call runs in a worker thread (boto3 clients are thread-safe), so the
  event loop never blocks on S3.
- Checksums only where the operation requires them: boto3 1.36+ adds CRC headers that several
  S3-compatible stores reject.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from bourse.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = structlog.get_logger("models.storage")


class StorageNotConfigured(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "No S3 bucket is configured (BOURSE_S3_BUCKET): `bourse up` starts an embedded store "
            "when none is; a standalone process needs the same variables as the platform."
        )


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    content_type: str


class ObjectStore:
    def __init__(self, settings: Settings, *, bucket: str | None = None) -> None:
        chosen = bucket or settings.s3_bucket
        if not chosen:
            raise StorageNotConfigured
        self.bucket: str = chosen
        self.url_ttl = settings.document_url_ttl_seconds
        self._sse = settings.s3_server_side_encryption or None
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent; a store that is starting up is
        given a few seconds)."""
        await asyncio.to_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        """Write (or overwrite) one private object."""
        await asyncio.to_thread(self._put, key, body, content_type)
        return StoredObject(key, len(body), content_type)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        if self._sse:
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    ServerSideEncryption=self._sse,  # type: ignore[arg-type]
                )
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
                    raise
                log.warning("store refused server-side encryption; writing without", code=code)
                self._sse = None
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    async def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True

        return await asyncio.to_thread(head)

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        return await asyncio.to_thread(read)

    def download_url(self, key: str, filename: str, content_type: str) -> str:
        """A presigned GET of one object, valid ``url_ttl`` seconds (signing is local: no I/O)."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=self.url_ttl,
        )

    async def delete_everything(self) -> None:
        """Empty and delete the bucket (tests clean up their own bucket with this)."""

        def wipe() -> None:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket):
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": o["Key"]} for o in page.get("Contents", []) if "Key" in o
                ]
                if keys:
                    self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
            self._client.delete_bucket(Bucket=self.bucket)

        await asyncio.to_thread(wipe)
