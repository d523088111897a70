"""The platform side: submit image checks and read verdicts back.

    from synthspot.worker.submit import submit
    check = submit("s3://uploads/2026/11/27/abc.jpg", task_id="upload-abc", metadata={"user": "42"})

``submit`` validates the check against the task contract before it is sent, so a platform
learns about a malformed check at once rather than from an error verdict.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import Celery

from .contract import Check, ImageRef, Verdict
from .runtime import runtime_for
from .settings import Settings, load_settings
from .tasks import TASK_NAME


def make_check(image: str, *, task_id: str | None = None, version_id: str | None = None,
               integrations: list[str] | None = None, metadata: dict[str, Any] | None = None,
               submitted_at: datetime | None = None) -> Check:
    fields: dict[str, Any] = {"task_id": task_id or uuid.uuid4().hex, "image": ImageRef(url=image, version_id=version_id),
                              "integrations": integrations, "metadata": metadata or {}}
    if submitted_at is not None:
        fields["submitted_at"] = submitted_at
    return Check(**fields)


def publish(app: Celery, messages: Iterable[dict[str, Any]]) -> None:
    """Publish check messages as Celery tasks (JSON), without any bookkeeping."""
    queue = app.synthspot_settings.queue  # type: ignore[attr-defined]
    with app.producer_or_acquire() as producer:
        for message in messages:
            app.send_task(TASK_NAME, args=[message], queue=queue, producer=producer,
                          task_id=f"{message['task_id']}.{uuid.uuid4().hex[:8]}")


def send(checks: Iterable[Check], *, app: Celery | None = None, settings: Settings | None = None) -> list[Check]:
    """Publish checks to the queue (one Celery message each, JSON).

    With Redis, each check is first recorded as pending, so that the reconciler sends it again
    should the broker lose it (see ``reconcile.py``).
    """
    if app is None:
        from .app import create_app

        app = create_app(settings)
    settings = app.synthspot_settings  # type: ignore[attr-defined]
    checks = list(checks)
    messages = [check.to_message() for check in checks]
    if not settings.embedded:
        from .reconcile import record_pending

        record_pending(runtime_for(settings).redis, messages, settings.reconcile_after_s)
    publish(app, messages)
    return checks


def submit(image: str, *, app: Celery | None = None, settings: Settings | None = None, **fields: Any) -> Check:
    """Validate and enqueue one check; returns it (its ``task_id`` is the verdict's key)."""
    check = make_check(image, **fields)
    send([check], app=app, settings=settings)
    return check


def wait_for_verdicts(task_ids: Iterable[str], *, settings: Settings | None = None, timeout_s: float = 300.0,
                      poll_s: float = 0.2) -> dict[str, Verdict]:
    """Poll the verdict store until every task id has a verdict or the timeout passes."""
    settings = settings or load_settings()
    store = runtime_for(settings).verdict_store
    wanted = list(dict.fromkeys(task_ids))
    found: dict[str, Verdict] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        found.update(store.get_many([t for t in wanted if t not in found]))
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        time.sleep(poll_s)
