"""One check, start to finish: validate → dedupe → fetch → decode → score → store.

This is the fetch → signal → action chain of a moderation pipeline, without Celery: the task in
``tasks.py`` only calls ``process`` and maps ``TransientError`` onto a retry, so tests and
benchmarks drive the same code with no broker.

Outcomes:

* a verdict is stored (scored, or an *error verdict* with a reason code for permanent problems:
  invalid task, bucket not allowed, object missing / forbidden / too large, not an image...);
* a stored verdict already exists for the task id: it is returned unchanged (duplicate);
* a transient failure (store down, object changed mid-read, failed forward pass, a model that
  cannot be loaded, e.g. weights failing their sha256) raises ``TransientError`` and nothing is
  stored: the check is retried.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from synthspot.detector import ImageError, decode_image, sigmoid
from synthspot.detector.infer import label_for
from synthspot.integrations.objectstore import FetchError

from . import metrics
from .contract import TASK_ID_PATTERN, Check, ErrorInfo, ImageRef, ModelInfo, Verdict, explain, utcnow
from .runtime import Runtime

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Worth retrying later; nothing was stored."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    verdict: Verdict
    outcome: str  # scored | error | duplicate


def _readable_task_id(payload: Any, fallback: str) -> str:
    import re

    task_id = payload.get("task_id") if isinstance(payload, dict) else None
    if isinstance(task_id, str) and re.match(TASK_ID_PATTERN, task_id):
        return task_id
    return fallback


def _readable_image(payload: Any) -> ImageRef | None:
    try:
        return ImageRef.model_validate(payload.get("image")) if isinstance(payload, dict) else None
    except (ValidationError, AttributeError, TypeError):
        return None


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _model_info(self) -> ModelInfo | None:
        det = self.rt._detector
        return ModelInfo(name=det.name, arch=det.cfg.arch, weights_sha256=det.weights_sha256) if det else None

    def _store(self, verdict: Verdict, requested: list[str] | None) -> Outcome:
        stored, created = self.rt.verdict_store.put(verdict, self.rt.route(verdict.label, requested))
        if not created:
            metrics.TASKS.labels("duplicate").inc()
            log.info("verdict already stored", extra={"label": stored.label})
            return Outcome(stored, "duplicate")
        outcome = "scored" if verdict.status == "scored" else "error"
        metrics.TASKS.labels(outcome).inc()
        metrics.VERDICTS.labels(verdict.label).inc()
        if verdict.error:
            metrics.ERRORS.labels(verdict.error.reason).inc()
        if verdict.score is not None:
            metrics.SCORE.observe(verdict.score)
        if "total" in verdict.timings:
            metrics.STAGE_SECONDS.labels("total").observe(verdict.timings["total"])
        log.info("verdict stored", extra={"label": verdict.label, "score": verdict.score,
                                          "reason": verdict.error.reason if verdict.error else None})
        return Outcome(verdict, outcome)

    def _error(self, *, task_id: str, image: ImageRef | None, reason: str, message: str, attempt: int,
               check: Check | None = None, timings: dict[str, float] | None = None, sha256: str | None = None,
               size: int | None = None) -> Outcome:
        verdict = Verdict(
            task_id=task_id, image=image, status="error", label="error", score=None, sha256=sha256,
            size_bytes=size, model=self._model_info(), error=ErrorInfo(reason=reason, message=message[:500]),
            timings=timings or {}, worker=self.rt.hostname, attempt=attempt,
            submitted_at=check.submitted_at if check else None,
            integrations=check.integrations if check else None, metadata=check.metadata if check else {})
        return self._store(verdict, check.integrations if check else None)

    def process(self, payload: Any, *, attempt: int = 1, fallback_id: str = "unknown") -> Outcome:
        started = time.time()
        try:
            check = Check.model_validate(payload)
        except ValidationError as exc:
            task_id = _readable_task_id(payload, f"invalid-{fallback_id}")
            existing = self.rt.verdict_store.get(task_id)
            if existing is not None:
                metrics.TASKS.labels("duplicate").inc()
                return Outcome(existing, "duplicate")
            log.warning("invalid check", extra={"detail": explain(exc)})
            return self._error(task_id=task_id, image=_readable_image(payload), reason="invalid_task",
                               message=explain(exc), attempt=attempt)

        existing = self.rt.verdict_store.get(check.task_id)
        if existing is not None:
            metrics.TASKS.labels("duplicate").inc()
            log.info("duplicate check: verdict already stored")
            return Outcome(existing, "duplicate")

        timings = {"queue_wait": max(0.0, started - check.submitted_at.timestamp())}
        metrics.STAGE_SECONDS.labels("queue_wait").observe(timings["queue_wait"])
        common = {"task_id": check.task_id, "image": check.image, "attempt": attempt, "check": check,
                  "timings": timings}

        t = time.perf_counter()
        try:
            obj = self.rt.object_store.fetch(check.image.bucket, check.image.key, check.image.version_id)
        except FetchError as exc:
            if exc.transient:
                metrics.ERRORS.labels(exc.reason).inc()
                raise TransientError(exc.reason, str(exc)) from None
            return self._error(reason=exc.reason, message=str(exc), **common)
        timings["fetch"] = time.perf_counter() - t
        metrics.STAGE_SECONDS.labels("fetch").observe(timings["fetch"])
        sha256, size = obj.sha256, len(obj.data)

        t = time.perf_counter()
        try:
            detector = self.rt.detector
        except Exception as exc:  # noqa: BLE001 - bad weights or no device: the deployment's fault, not the check's
            metrics.ERRORS.labels("model_unavailable").inc()
            raise TransientError("model_unavailable", f"the model cannot be loaded: {exc}") from None
        try:
            views = detector.prepare(decode_image(obj.data, self.rt.decode_limits))
        except ImageError as exc:
            return self._error(reason=exc.reason, message=str(exc), sha256=sha256, size=size, **common)
        timings["decode"] = time.perf_counter() - t
        metrics.STAGE_SECONDS.labels("decode").observe(timings["decode"])

        t = time.perf_counter()
        try:
            logit = self.rt.batcher.submit(views).result(timeout=600)
        except Exception as exc:  # noqa: BLE001 - a failed batch retries each of its checks
            metrics.ERRORS.labels("inference_failed").inc()
            raise TransientError("inference_failed", f"forward pass failed: {exc!r}") from None
        timings["inference"] = time.perf_counter() - t
        metrics.STAGE_SECONDS.labels("inference").observe(timings["inference"])

        thresholds = self.rt.thresholds
        score = sigmoid(logit)
        timings["total"] = time.time() - started + timings["queue_wait"]
        verdict = Verdict(
            task_id=check.task_id, image=check.image, status="scored",
            label=label_for(score, thresholds["synthetic"], thresholds["review"]),  # type: ignore[arg-type]
            score=score, logit=logit, sha256=sha256, size_bytes=size, thresholds=thresholds,
            model=self._model_info(), timings={k: round(v, 6) for k, v in timings.items()},
            worker=self.rt.hostname, attempt=attempt, submitted_at=check.submitted_at, created_at=utcnow(),
            integrations=check.integrations, metadata=check.metadata)
        return self._store(verdict, check.integrations)

    def process_failure(self, payload: Any, *, reason: str, message: str, attempt: int) -> Outcome:
        """The error verdict of a check whose transient failures outlasted its retries."""
        try:
            check: Check | None = Check.model_validate(payload)
        except ValidationError:
            check = None
        task_id = check.task_id if check else _readable_task_id(payload, "unknown")
        return self._error(task_id=task_id, image=check.image if check else _readable_image(payload),
                           reason=reason, message=f"gave up after {attempt} attempts: {message}", attempt=attempt,
                           check=check)
