"""Per-process state of a worker: model, batcher, object store, verdict store.

Built lazily, after fork, in the process that handles checks (Celery's threads and solo pools
run tasks in the worker process itself, which never forks after CUDA is touched). The model is
loaded once per process, on first use or by ``warm_up()`` from the ``worker_ready`` signal, so
no process-init timeout can trip on a slow weights load.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from functools import cached_property
from typing import Any

from synthspot.detector import Detector
from synthspot.detector.decode import DecodeLimits
from synthspot.detector.errors import SynthspotError
from synthspot.integrations.objectstore import LocalObjectStore, ObjectStore

from . import metrics
from .batcher import Batcher
from .redisconn import connect
from .settings import Settings
from .store import JsonlVerdictStore, RedisVerdictStore, VerdictStore

log = logging.getLogger(__name__)

#: After a failed model load, checks that need the model fail fast (and retry) for this long
#: before the next attempt re-reads and re-hashes the weights file.
MODEL_RELOAD_AFTER_S = 10.0


class Runtime:
    """Everything a worker process needs to turn a check into a verdict."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hostname = socket.gethostname()
        self._lock = threading.Lock()
        self._detector: Detector | None = None
        self._load_failure: tuple[float, Exception] | None = None
        self._batcher: Batcher[Any, float] | None = None

    # --- model ---------------------------------------------------------------------------------
    @property
    def detector(self) -> Detector:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    failure = self._load_failure
                    if failure is not None and time.monotonic() - failure[0] < MODEL_RELOAD_AFTER_S:
                        raise RuntimeError(f"the model failed to load {time.monotonic() - failure[0]:.0f}s ago: "
                                           f"{failure[1]}")
                    s = self.settings
                    overrides = {"policy": s.policy} if s.policy else None
                    try:
                        det = Detector.load(s.weights, device=s.device, cache_dir=s.cache_dir,
                                            mirror=s.weights_mirror, preset_overrides=overrides,
                                            batch_size=max(64, s.batch_size), threshold=s.threshold, progress=False,
                                            compile=s.compile)
                    except Exception as exc:
                        self._load_failure = (time.monotonic(), exc)
                        raise
                    self._load_failure = None
                    metrics.MODEL_INFO.labels(det.name, det.cfg.arch, det.weights_sha256 or "").set(1)
                    metrics.READY.labels("worker").set(1)
                    log.info("model ready", extra={"weights": det.name, "device": str(det.device)})
                    self._detector = det
        return self._detector

    @property
    def ready(self) -> bool:
        return self._detector is not None

    def warm_up(self) -> None:
        """Load the model now; on failure stay unready and say why once (checks retry meanwhile)."""
        try:
            _ = self.batcher
        except SynthspotError as exc:  # bad weights or device: a clear line, no traceback
            log.error("cannot load the model, not ready; checks wait and retry: %s", exc,
                      extra={"reason": exc.reason})
        except Exception:  # noqa: BLE001 - readiness stays false; checks retry as model_unavailable
            log.exception("loading the model failed")

    @property
    def batcher(self) -> Batcher[Any, float]:
        if self._batcher is None:
            det = self.detector
            with self._lock:
                if self._batcher is None:
                    def observe(size: int, seconds: float) -> None:
                        metrics.BATCH_SIZE.observe(size)

                    self._batcher = Batcher(det.score_views, max_batch=self.settings.batch_size,
                                            max_wait_s=self.settings.batch_wait_ms / 1000, on_batch=observe)
        return self._batcher

    @property
    def thresholds(self) -> dict[str, float]:
        synthetic = self.detector.threshold
        review = self.settings.review_threshold
        if review is None:
            review = self.detector.cfg.review_threshold
        if review is None or review > synthetic:
            review = synthetic / 2
        return {"synthetic": synthetic, "review": review}

    @cached_property
    def decode_limits(self) -> DecodeLimits:
        s = self.settings
        return DecodeLimits(max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels, min_side=s.min_image_side)

    # --- storage ---------------------------------------------------------------------------------
    @cached_property
    def redis(self) -> Any:
        if self.settings.redis_url is None:
            raise RuntimeError("no redis_url configured")
        ca = str(self.settings.redis_tls_ca_file) if self.settings.redis_tls_ca_file else None
        return connect(self.settings.redis_url.get_secret_value(), ca)

    @cached_property
    def object_store(self) -> ObjectStore:
        s = self.settings
        common = {"allowed_buckets": s.s3_allowed_buckets, "max_bytes": s.max_image_bytes}
        if s.storage == "local":
            return LocalObjectStore(s.bucket_root, **common)
        from synthspot.integrations.s3 import S3ObjectStore, make_client

        client = make_client(
            endpoint_url=s.s3_endpoint_url, region=s.s3_region,
            access_key_id=s.s3_access_key_id.get_secret_value() if s.s3_access_key_id else None,
            secret_access_key=s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None,
            max_attempts=s.s3_max_attempts, connect_timeout=s.s3_connect_timeout_s, read_timeout=s.s3_read_timeout_s,
            max_pool_connections=s.worker_concurrency)  # one connection per check in flight
        return S3ObjectStore(client, **common)

    @cached_property
    def verdict_store(self) -> VerdictStore:
        if self.settings.embedded:
            return JsonlVerdictStore(self.settings.verdicts_path)
        return RedisVerdictStore(self.redis, ttl_s=self.settings.verdict_ttl_s)

    def route(self, label: str, requested: list[str] | None) -> list[str]:
        """Integrations that receive a verdict of ``label`` (the check may narrow the set)."""
        names = []
        for integration in self.settings.integrations:
            if not integration.enabled or label not in integration.labels:
                continue
            if requested is not None and integration.name not in requested:
                continue
            names.append(integration.name)
        if requested:
            unknown = set(requested) - {i.name for i in self.settings.integrations}
            if unknown:
                log.warning("check asks for unknown integrations", extra={"unknown": sorted(unknown)})
        return names

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
        metrics.READY.labels("worker").set(0)


_RUNTIMES: dict[int, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime_for(settings: Settings) -> Runtime:
    """The process's runtime for these settings (one per settings object, created on first use)."""
    key = id(settings)
    with _RUNTIMES_LOCK:
        if key not in _RUNTIMES:
            _RUNTIMES[key] = Runtime(settings)
        return _RUNTIMES[key]
