"""Every Prometheus metric synthspot exports, declared once at module level.

Naming follows Prometheus practice: the ``synthspot_`` prefix, base units (``_seconds``),
``_total`` on counters, and labels of low cardinality only (never an image key, URL or task id).

Multiprocess-safe: when ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts (the container
entrypoint does it, and empties the folder), every process writes its samples there and
``registry()`` aggregates them with a ``MultiProcessCollector``; each gauge declares how
processes combine. Without it, the default in-process registry is used.
"""
from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

STAGES = ("queue_wait", "fetch", "decode", "inference", "delivery", "total")
OUTCOMES = ("scored", "error", "duplicate", "retried")

TASKS = Counter("synthspot_tasks_total", "Image checks handled, by outcome "
                "(scored, error verdict, duplicate of a stored verdict, retried later)", ["outcome"])
STAGE_SECONDS = Histogram(
    "synthspot_stage_seconds", "Time per pipeline stage: queue_wait (submission to start), fetch, decode "
    "(decode + preprocess), inference (wait in the batcher + forward pass), delivery (one HTTP attempt), total",
    ["stage"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200))
BATCH_SIZE = Histogram("synthspot_batch_size", "Images per forward pass",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
SCORE = Histogram("synthspot_score", "Scores (probability of being synthetic) of scored images",
                  buckets=tuple(round(0.05 * i, 2) for i in range(1, 21)))
VERDICTS = Counter("synthspot_verdicts_total", "Verdicts stored, by label", ["label"])
ERRORS = Counter("synthspot_errors_total", "Error verdicts and transient failures, by reason code", ["reason"])
MODEL_INFO = Gauge("synthspot_model_info", "The loaded weights (value 1)", ["weights", "arch", "sha256"],
                   multiprocess_mode="max")
INFLIGHT = Gauge("synthspot_inflight_tasks", "Checks being processed now", multiprocess_mode="livesum")
QUEUE_LENGTH = Gauge("synthspot_queue_length", "Checks waiting in the broker queue (LLEN; in-flight not included)",
                     ["queue"], multiprocess_mode="max")
READY = Gauge("synthspot_ready", "1 when this process has its weights loaded and verified",
              ["role"], multiprocess_mode="liveall")

DELIVERIES = Counter("synthspot_deliveries_total", "Delivery attempts by integration and result status "
                     "(delivered, retry, dead_letter, disabled, skipped)", ["integration", "status"])
DELIVERY_ATTEMPTS = Counter("synthspot_delivery_attempts_total", "HTTP delivery attempts", ["integration"])
OUTBOX_SIZE = Gauge("synthspot_outbox_size", "Deliveries waiting in the outbox", multiprocess_mode="max")
DEAD_LETTER_SIZE = Gauge("synthspot_dead_letter_size", "Deliveries in the dead-letter store",
                         multiprocess_mode="max")
INTEGRATION_DISABLED = Gauge("synthspot_integration_disabled", "1 when an endpoint answered 410 and was disabled",
                             ["integration"], multiprocess_mode="max")


def precreate(labels_of_errors: tuple[str, ...] = ()) -> None:
    """Create the labelled series that should exist at zero before the first event."""
    for outcome in OUTCOMES:
        TASKS.labels(outcome)
    for stage in STAGES:
        STAGE_SECONDS.labels(stage)
    for label in ("synthetic", "review", "real", "error"):
        VERDICTS.labels(label)
    for reason in labels_of_errors:
        ERRORS.labels(reason)


def registry() -> CollectorRegistry:
    """The registry to expose: multiprocess aggregation when configured, else the default one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        MultiProcessCollector(reg)
        return reg
    return REGISTRY
