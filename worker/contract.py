"""The task contract: what platforms send (a *check*) and what synthspot returns (a *verdict*).

Both are versioned JSON documents (``schema`` field), validated strictly: unknown fields, wrong
types and oversized strings are refused. The JSON Schemas in docs/schemas/ are generated from
these models (``synthspot schema``), and docs/task-contract.md explains them.

A check that fails validation is not dropped: it becomes an error verdict with reason
``invalid_task`` (keyed by its ``task_id`` when that much is readable).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CHECK_SCHEMA = "synthspot.check/v1"
VERDICT_SCHEMA = "synthspot.verdict/v1"
MAX_METADATA_BYTES = 8192
MAX_METADATA_DEPTH = 32  # verdicts are read back with pydantic's JSON parser, whose nesting limit is ~200
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

Label = Literal["synthetic", "review", "real", "error"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ImageRef(BaseModel):
    """An object in a bucket: ``s3://bucket/key``, optionally pinned to a version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(max_length=1100, description="s3://bucket/key")
    version_id: str | None = Field(default=None, max_length=1024, description="S3 version id to read")

    @field_validator("url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError("must be s3://bucket/key")
        if not _BUCKET.match(parsed.netloc):
            raise ValueError(f"invalid bucket name {parsed.netloc!r}")
        if parsed.query or parsed.fragment:
            raise ValueError("no query or fragment allowed in an s3:// reference")
        if len(parsed.path.lstrip("/").encode()) > 1024:
            raise ValueError("object key longer than 1024 bytes")
        return value

    @property
    def bucket(self) -> str:
        return urlparse(self.url).netloc

    @property
    def key(self) -> str:
        return unquote(urlparse(self.url).path.lstrip("/"))


class Check(BaseModel):
    """One image check submitted by a platform."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=2048)

    schema_: Literal["synthspot.check/v1"] = Field(default=CHECK_SCHEMA, alias="schema",
                                                   description="contract version")
    task_id: str = Field(pattern=TASK_ID_PATTERN, description="the platform's id: idempotency key of the verdict")
    image: ImageRef
    integrations: list[str] | None = Field(default=None, max_length=16,
                                           description="integration names to receive the verdict (default: all "
                                                       "whose routing matches its label)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="free-form, echoed back in the verdict "
                                                                       f"(at most {MAX_METADATA_BYTES} bytes as JSON)")
    submitted_at: datetime = Field(default_factory=utcnow, description="when the platform submitted the check "
                                                                       "(RFC 3339, with a time zone)")

    @field_validator("integrations")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for name in value:
                if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", name):
                    raise ValueError(f"invalid integration name {name[:70]!r}")
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Metadata is echoed into the stored verdict, so it must be JSON that reads back: nesting
        # beyond the limit made json.dumps or the verdict's own parser fail (a check that never got
        # an answer, or a stored verdict nobody could read), and so did NaN or a lone surrogate.
        if _depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels")
        try:
            size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))
        except (ValueError, TypeError):  # NaN/Infinity; UnicodeEncodeError (a lone surrogate) is a ValueError
            raise ValueError("metadata must be plain JSON (no NaN, Infinity or unpaired surrogates)") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata larger than {MAX_METADATA_BYTES} bytes")
        return value

    @field_validator("submitted_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("submitted_at needs a time zone (e.g. 2026-01-01T12:00:00Z)")
        return value

    def to_message(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ModelInfo(BaseModel):
    name: str
    arch: str
    weights_sha256: str | None


class ErrorInfo(BaseModel):
    reason: str
    message: str


class Verdict(BaseModel):
    """synthspot's answer for one check; stored once per ``task_id`` and delivered as is."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["synthspot.verdict/v1"] = Field(default=VERDICT_SCHEMA, alias="schema")
    task_id: str
    image: ImageRef | None = Field(description="null only when the check was too malformed to name one")
    status: Literal["scored", "error"]
    label: Label = Field(description="synthetic / review / real from the thresholds; error when not scored")
    score: float | None = Field(description="probability of being synthetic, 0-1")
    logit: float | None = None
    sha256: str | None = Field(default=None, description="sha256 of the image bytes scored")
    size_bytes: int | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    model: ModelInfo | None = None
    error: ErrorInfo | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    worker: str = Field(description="host name of the worker that produced the verdict")
    attempt: int = Field(default=1, description="1 + retries of the check before this verdict")
    submitted_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    integrations: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Verdict":
        return cls.model_validate_json(text)


def _depth(value: Any) -> int:
    """Nesting depth of lists and dicts, without recursion (a deep document must not blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_METADATA_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _safe(part: Any, cap: int = 64) -> str:
    """A location part (a field name or dict key, attacker-chosen) made short and valid UTF-8."""
    text = str(part)
    text = text if len(text) <= cap else text[:cap] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def explain(exc: ValidationError, limit: int = 3) -> str:
    """A short, safe summary of a validation error (no echo of oversized input)."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(_safe(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def schemas() -> dict[str, dict[str, Any]]:
    return {"check-v1.json": Check.model_json_schema(by_alias=True),
            "verdict-v1.json": Verdict.model_json_schema(by_alias=True)}
