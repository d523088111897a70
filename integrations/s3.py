"""Images from S3 or any S3-compatible server (MinIO, Ceph, nanio...), read defensively.

Per object: ``head_object`` first (size cap before a single byte of the body is read, and the
ETag), then one ranged ``get_object`` for exactly that many bytes with ``IfMatch`` pinned to the
ETag, so that an object replaced in between is detected (412: retried) instead of mixing two
uploads. boto3's *standard* retry mode handles throttling and 5xx with backoff; what still
fails is classified as permanent (error verdict) or transient (the check is retried later).
Clients are created per process, after fork, by the worker's runtime.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .objectstore import FetchedObject, FetchError, ObjectStore

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "AccountProblem", "InvalidObjectState"}
_CHANGED = {"412", "PreconditionFailed"}


def make_client(*, endpoint_url: str | None = None, region: str | None = None, access_key_id: str | None = None,
                secret_access_key: str | None = None, max_attempts: int = 5, connect_timeout: float = 5.0,
                read_timeout: float = 30.0, max_pool_connections: int = 10) -> Any:
    """A boto3 S3 client with standard retries and bounded timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": max_attempts},
                    connect_timeout=connect_timeout, read_timeout=read_timeout,
                    max_pool_connections=max_pool_connections,
                    s3={"addressing_style": "path"} if endpoint_url else None,
                    signature_version="s3v4")
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
                          aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, config=config)


def _classify(exc: Exception, where: str) -> FetchError:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _NOT_FOUND or status == "404":
            return FetchError(f"{where} not found", reason="object_not_found")
        if code in _DENIED or status == "403":
            return FetchError(f"{where}: access denied ({code})", reason="access_denied")
        if code in _CHANGED or status == "412":
            return FetchError(f"{where} changed while it was read", reason="store_unavailable", transient=True)
        if code == "InvalidRange" or status == "416":
            return FetchError(f"{where}: empty object", reason="object_empty")
        return FetchError(f"{where}: {code or status}", reason="store_unavailable", transient=True)
    if isinstance(exc, BotoCoreError):
        return FetchError(f"{where}: {type(exc).__name__}", reason="store_unavailable", transient=True)
    return FetchError(f"{where}: {exc!r}", reason="store_unavailable", transient=True)


class S3ObjectStore(ObjectStore):
    """``ObjectStore`` over a boto3 client."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _fetch(self, bucket: str, key: str, version_id: str | None) -> FetchedObject:
        where = f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")
        extra = {"VersionId": version_id} if version_id else {}
        try:
            head = self.client.head_object(Bucket=bucket, Key=key, **extra)
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _classify(exc, where) from None
        size = int(head.get("ContentLength", 0))
        etag = head.get("ETag")
        if size > self.max_bytes:
            raise FetchError(f"{where} is {size} bytes, above the cap of {self.max_bytes}", reason="too_large")
        if size == 0:
            return FetchedObject(b"", etag, head.get("VersionId"))
        try:
            kwargs = dict(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}", **extra)
            if etag:
                kwargs["IfMatch"] = etag
            response = self.client.get_object(**kwargs)
            body = response["Body"]
            try:
                data = body.read(self.max_bytes + 1)
            finally:
                body.close()
        except Exception as exc:  # noqa: BLE001
            raise _classify(exc, where) from None
        if len(data) > self.max_bytes:
            raise FetchError(f"{where} grew above the cap of {self.max_bytes} bytes", reason="too_large")
        if len(data) != size:
            raise FetchError(f"{where}: read {len(data)} of {size} bytes", reason="store_unavailable", transient=True)
        return FetchedObject(data, etag, response.get("VersionId") or head.get("VersionId"))


def download_file(url: str, dest: Path, client: Any | None = None) -> None:
    """Download ``s3://bucket/key`` to ``dest`` (weights files). Credentials: boto3's usual chain,
    plus ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for S3-compatible servers."""
    parsed = urlparse(url)
    client = client or make_client()
    client.download_file(parsed.netloc, unquote(parsed.path.lstrip("/")), str(dest))
