"""The Celery task: thin. It validates nothing itself; it runs the pipeline and maps failures.

* verdict stored (scored, error verdict, or duplicate): return; Celery acknowledges (late ack);
* ``TransientError`` or a store/broker connection error: ``retry`` with exponential backoff
  and jitter; if even publishing the retry fails, ``Reject(requeue=True)`` hands the message
  back; if the worker dies, ``reject_on_worker_lost`` requeues it;
* retries exhausted: an error verdict with the last reason, so the platform always hears back.

The task accepts any arguments so that a malformed message still produces an error verdict
instead of a ``TypeError`` that Celery would swallow.
"""
from __future__ import annotations

import logging
import random
from typing import Any

from celery import Celery
from celery.exceptions import Reject, Retry

from . import metrics
from .logs import task_context
from .pipeline import Pipeline, TransientError, _readable_task_id
from .runtime import runtime_for
from .settings import Settings

log = logging.getLogger(__name__)
TASK_NAME = "synthspot.check"


def _connection_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError)


def backoff_s(retries: int, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, 2 ** retries)], at least 1 s."""
    return max(1.0, random.uniform(0, min(cap, 2.0 ** (retries + 1))))


def register_tasks(app: Celery, settings: Settings) -> None:
    transient = (TransientError, *_connection_errors())

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
              max_retries=settings.task_max_retries, queue=settings.queue)
    def check(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        payload: Any = args[0] if len(args) == 1 and not kwargs else (kwargs if kwargs and not args else
                                                                      {"args": list(args), **kwargs})
        # only a task id that passes the contract goes into log records (not a 1 MB string)
        with task_context(_readable_task_id(payload, self.request.id)):
            rt = runtime_for(settings)
            pipeline = Pipeline(rt)
            attempt = self.request.retries + 1
            metrics.INFLIGHT.inc()
            try:
                outcome = pipeline.process(payload, attempt=attempt, fallback_id=self.request.id)
                return {"task_id": outcome.verdict.task_id, "label": outcome.verdict.label,
                        "outcome": outcome.outcome}
            except transient as exc:
                reason = getattr(exc, "reason", "redis_unavailable")  # TransientError carries its own
                if self.request.retries >= self.max_retries:
                    log.error("giving up after %d attempts", attempt, extra={"reason": reason})
                    outcome = pipeline.process_failure(payload, reason=reason, message=str(exc), attempt=attempt)
                    return {"task_id": outcome.verdict.task_id, "label": outcome.verdict.label,
                            "outcome": outcome.outcome}
                delay = backoff_s(self.request.retries, settings.retry_backoff_max_s)
                log.warning("transient failure, retrying in %.1fs", delay, extra={"reason": reason})
                metrics.TASKS.labels("retried").inc()
                try:
                    raise self.retry(countdown=delay, exc=exc)
                except Retry:
                    raise
                except Exception:  # noqa: BLE001 - could not publish the retry: hand the message back
                    log.warning("could not publish the retry; requeueing the message")
                    raise Reject(reason, requeue=True) from None
            finally:
                metrics.INFLIGHT.dec()
