"""Structured logs: one JSON object per record, carrying the task id of the check being handled.

The task id lives in a context variable set by the task for its duration, so every record
emitted while handling a check (ours, boto3's, Celery's) carries it without passing it around.
Secrets never reach a record: settings hold them as ``SecretStr``, and URLs are logged without
credentials.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator

TASK_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("synthspot_task_id", default=None)
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "task_id"}


@contextmanager
def task_context(task_id: str | None) -> Iterator[None]:
    token = TASK_ID.set(task_id)
    try:
        yield
    finally:
        TASK_ID.reset(token)


class TaskIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "task_id"):
            record.task_id = TASK_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None)
        if task_id:
            doc["task_id"] = task_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):  # replaces the CLI's plain handler too: one line per record
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._synthspot = True  # type: ignore[attr-defined]
    handler.addFilter(TaskIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(task_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
