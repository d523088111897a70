"""Where images come from: a small interface, with a local-folder implementation.

``fetch`` returns the object's bytes or raises ``FetchError`` with a reason code and whether
the failure is transient (worth a retry: the store is down, throttling, the object changed
between reading its size and its bytes) or permanent (missing, forbidden, too large, bucket not
allowed: an error verdict).
"""
from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


class FetchError(Exception):
    """Fetching an object failed; ``reason`` is a stable code, ``transient`` says whether to retry."""

    def __init__(self, message: str, *, reason: str, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


#: Permanent reasons (error verdicts) and the transient one (retried).
FETCH_REASONS = {
    "bucket_not_allowed": "the bucket is not in the allowlist",
    "object_not_found": "no such bucket, key or version",
    "access_denied": "the store refused the credentials",
    "too_large": "the object is larger than the byte cap",
    "invalid_reference": "the reference cannot name an object",
    "object_empty": "the object holds no bytes",
    "store_unavailable": "the store failed or could not be reached (transient: retried)",
}


@dataclass(frozen=True)
class FetchedObject:
    data: bytes
    etag: str | None
    version_id: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class ObjectStore(ABC):
    """Reads objects by bucket and key, refusing buckets outside the allowlist (empty = any)."""

    def __init__(self, allowed_buckets: list[str] | tuple[str, ...] = (), max_bytes: int = 50 * 1024 * 1024) -> None:
        self.allowed_buckets = frozenset(allowed_buckets)
        self.max_bytes = max_bytes

    def fetch(self, bucket: str, key: str, version_id: str | None = None) -> FetchedObject:
        if self.allowed_buckets and bucket not in self.allowed_buckets:
            raise FetchError(f"bucket {bucket!r} is not in the allowlist", reason="bucket_not_allowed")
        if not key or len(key.encode()) > 1024:
            raise FetchError("empty or over-long object key", reason="invalid_reference")
        return self._fetch(bucket, key, version_id)

    @abstractmethod
    def _fetch(self, bucket: str, key: str, version_id: str | None) -> FetchedObject: ...


class LocalObjectStore(ObjectStore):
    """A folder standing in for buckets: ``s3://bucket/key`` is ``root/bucket/key``.

    Keys cannot climb out of their bucket (``..`` and absolute keys are refused).
    """

    def __init__(self, root: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.root = Path(root)

    def path_of(self, bucket: str, key: str) -> Path:
        base = (self.root / bucket).resolve()
        path = (base / key).resolve()
        if base not in path.parents:
            raise FetchError(f"key {key!r} leaves its bucket", reason="invalid_reference")
        return path

    def _fetch(self, bucket: str, key: str, version_id: str | None) -> FetchedObject:
        if version_id:
            raise FetchError("the local store keeps no versions", reason="object_not_found")
        path = self.path_of(bucket, key)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise FileNotFoundError(path)
        except FileNotFoundError:
            raise FetchError(f"s3://{bucket}/{key} not found", reason="object_not_found") from None
        except PermissionError:
            raise FetchError(f"s3://{bucket}/{key}: permission denied", reason="access_denied") from None
        if size > self.max_bytes:
            raise FetchError(f"object is {size} bytes, above the cap of {self.max_bytes}", reason="too_large")
        try:
            with open(path, "rb") as fh:
                data = fh.read(self.max_bytes + 1)
        except PermissionError:
            raise FetchError(f"s3://{bucket}/{key}: permission denied", reason="access_denied") from None
        except OSError as exc:
            raise FetchError(f"cannot read s3://{bucket}/{key}: {exc}", reason="store_unavailable",
                             transient=True) from None
        if len(data) > self.max_bytes:
            raise FetchError(f"object grew above the cap of {self.max_bytes} bytes", reason="too_large")
        stat = os.stat(path)
        return FetchedObject(data, etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}", version_id=None)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Add an object (the demo and tests upload through this)."""
        path = self.path_of(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
