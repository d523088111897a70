"""The delivery role (``synthspot deliver``): moves verdicts from the Redis outbox to integrations.

It runs apart from scoring, on CPU, so an endpoint that is down for hours never stalls a GPU
worker: the worker only writes the verdict and its deliveries (one Lua script, worker/store.py)
and acknowledges the check; this process does the HTTP. Any number of deliverers may run: each
delivery is leased to one of them at a time (worker/outbox.py).

The loop claims as many due deliveries as it has free threads (``delivery_concurrency``), hands
each to a thread that makes one attempt through the integration's ``Notifier`` and records the
result (delivered, retried later, dead-lettered, integration disabled on 410), and sleeps until
the next delivery is due (at most ``POLL_S``) or a thread frees up. SIGTERM stops claiming and
waits for the attempts in flight (each bounded by its integration's timeout).

``/metrics``, ``/livez`` and ``/readyz`` are served on ``deliver_metrics_port``; ready means the
loop reached Redis within the last ``READY_STALE_S`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synthspot.integrations import registry
from synthspot.integrations.registry import DeliveryResult, IntegrationSpec, Notifier

from . import metrics
from .logs import task_context
from .outbox import Claim, Outbox, connect
from .settings import IntegrationConfig, Settings
from .store import RedisVerdictStore

log = logging.getLogger(__name__)

POLL_S = 0.5
GAUGES_EVERY_S = 2.0
PRUNE_EVERY_S = 600.0
READY_STALE_S = 30.0
STATUSES = ("delivered", "retry", "dead_letter", "disabled", "skipped")


def spec_of(cfg: IntegrationConfig) -> IntegrationSpec:
    """The library-side description of a configured integration (secrets unwrapped only here)."""
    return IntegrationSpec(name=cfg.name, type=cfg.type, url=cfg.url.get_secret_value() if cfg.url else None,
                           secrets=tuple(s.get_secret_value() for s in cfg.secrets), timeout_s=cfg.timeout_s,
                           options=dict(cfg.model_extra or {}))


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    """One notifier per enabled integration; a bad configuration fails here, at start, by name."""
    notifiers = {}
    for cfg in settings.integrations:
        if cfg.enabled:
            notifiers[cfg.name] = registry.create(spec_of(cfg))
    return notifiers


class Deliverer:
    def __init__(self, settings: Settings, client: Any = None, notifiers: dict[str, Notifier] | None = None) -> None:
        if client is None:
            if settings.redis_url is None:
                raise ValueError("delivery needs Redis: set SYNTHSPOT_REDIS_URL (embedded mode has no outbox)")
            ca = str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None
            # ~10 s of reconnects per call: the loop retries forever anyway, and SIGTERM stays prompt
            client = connect(settings.redis_url.get_secret_value(), ca, retries=10)
        self.settings = settings
        self.redis = client
        self.store = RedisVerdictStore(client, ttl_s=settings.verdict_ttl_s)
        self.outbox = Outbox(client, schedule=settings.retry_schedule_s, lease_s=settings.delivery_lease_s)
        self.configs = {cfg.name: cfg for cfg in settings.integrations}
        self.notifiers = build_notifiers(settings) if notifiers is None else notifiers
        self.concurrency = settings.delivery_concurrency
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="synthspot-deliver")
        self._lock = threading.Lock()
        self._inflight = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_ok = 0.0
        for name, cfg in self.configs.items():
            # an attempt can take connect (<= 5 s) + write + read timeouts: a lease shorter than that
            # may run out mid-attempt, and another deliverer would send the same verdict again
            if cfg.enabled and settings.delivery_lease_s < 2 * cfg.timeout_s + 5:
                log.warning("delivery_lease_s is shorter than this integration's longest attempt: a slow "
                            "endpoint may receive duplicates", extra={"integration": name,
                                                                       "lease_s": settings.delivery_lease_s})
        for name in self.configs:
            metrics.DELIVERY_ATTEMPTS.labels(name)
            metrics.INTEGRATION_DISABLED.labels(name)
            for status in STATUSES:
                metrics.DELIVERIES.labels(name, status)
        metrics.STAGE_SECONDS.labels("delivery")

    # --- lifecycle -------------------------------------------------------------------------------
    def ready(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self._last_ok < READY_STALE_S

    def stop(self) -> None:
        """Stop claiming (safe from a signal handler); ``run`` returns once attempts in flight end."""
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        from redis.exceptions import RedisError

        log.info("deliverer started", extra={"concurrency": self.concurrency, "integrations": ",".join(
            f"{n}({nt.endpoint()})" for n, nt in self.notifiers.items())})
        next_gauges, next_prune = 0.0, time.monotonic() + 60
        while not self._stop.is_set():
            self._wake.clear()
            try:
                now = time.monotonic()
                if now >= next_gauges:
                    self.update_gauges()
                    next_gauges = now + GAUGES_EVERY_S
                if now >= next_prune:
                    if pruned := self.outbox.prune():
                        log.info("dropped expired deliveries from the outbox", extra={"count": pruned})
                    next_prune = now + PRUNE_EVERY_S
                free = self._free()
                claims = self.outbox.claim(free) if free else []
                for claim in claims:
                    self._submit(claim)
                timeout = POLL_S
                if free and len(claims) < free:
                    due = self.outbox.next_due()
                    if due is not None:
                        timeout = min(POLL_S, max(0.005, due - time.time()))
                elif free:
                    timeout = 0  # every slot filled from due work: there may be more
                self._last_ok = time.monotonic()
            except RedisError as exc:
                log.warning("redis unavailable; retrying", extra={"error": type(exc).__name__})
                metrics.READY.labels("deliver").set(0)  # back to 1 with the next gauge refresh
                timeout = 1.0
            if timeout:
                self._wake.wait(timeout)
        log.info("deliverer stopping: waiting for attempts in flight", extra={"inflight": self._inflight})
        self._pool.shutdown(wait=True)
        for notifier in self.notifiers.values():
            notifier.close()
        metrics.READY.labels("deliver").set(0)
        log.info("deliverer stopped")

    def _free(self) -> int:
        with self._lock:
            return self.concurrency - self._inflight

    def _submit(self, claim: Claim) -> None:
        with self._lock:
            self._inflight += 1
        self._pool.submit(self._handle, claim)

    def update_gauges(self) -> None:
        outbox, dead = self.outbox.sizes()
        metrics.OUTBOX_SIZE.set(outbox)
        metrics.DEAD_LETTER_SIZE.set(dead)
        disabled = self.outbox.disabled()
        for name in self.configs:
            metrics.INTEGRATION_DISABLED.labels(name).set(1 if name in disabled else 0)
        metrics.READY.labels("deliver").set(1)

    # --- one delivery ----------------------------------------------------------------------------
    def _handle(self, claim: Claim) -> None:
        from redis.exceptions import RedisError

        d = claim.delivery
        with task_context(d.task_id):
            try:
                self.deliver_one(claim)
            except RedisError as exc:
                log.warning("redis unavailable while recording a delivery; it is retried when its lease ends",
                            extra={"integration": d.integration, "delivery_id": d.id,
                                   "error": type(exc).__name__})
            except Exception:  # noqa: BLE001 - a bug must not kill the pool thread; the lease brings it back
                log.exception("delivery failed unexpectedly", extra={"integration": d.integration,
                                                                     "delivery_id": d.id})
            finally:
                with self._lock:
                    self._inflight -= 1
                self._wake.set()

    def _without_attempt(self, claim: Claim, reason: str, status: str, message: str) -> None:
        d = claim.delivery
        if self.outbox.dead_letter(claim, reason, attempted=False, error=message):
            metrics.DELIVERIES.labels(d.integration, status).inc()
            log.warning("delivery dead-lettered without an attempt: %s", message,
                        extra={"integration": d.integration, "delivery_id": d.id, "reason": reason})

    def deliver_one(self, claim: Claim) -> str:
        """Make one attempt of a claimed delivery and record its result; returns the metrics status."""
        d = claim.delivery
        notifier = self.notifiers.get(d.integration)
        if notifier is None:
            configured = d.integration in self.configs
            reason = "integration_not_enabled" if configured else "integration_not_configured"
            self._without_attempt(claim, reason, "skipped", "the integration is " + reason.split("_", 1)[1].replace(
                "_", " ") + " on this deliverer")
            return "skipped"
        record = self.outbox.disabled_record(d.integration)
        if record is not None:
            if record.get("fingerprint") and record["fingerprint"] != notifier.fingerprint():
                self.outbox.enable(d.integration)
                metrics.INTEGRATION_DISABLED.labels(d.integration).set(0)
                log.warning("integration re-enabled: its endpoint changed since it answered 410",
                            extra={"integration": d.integration, "endpoint": notifier.endpoint()})
            else:
                self._without_attempt(claim, "integration_disabled", "disabled",
                                      "the endpoint answered 410 Gone earlier; replay to re-enable")
                return "disabled"
        verdict = self.store.get(d.task_id)
        if verdict is None:
            self._without_attempt(claim, "verdict_missing", "dead_letter", "the verdict expired or was deleted")
            return "dead_letter"

        metrics.DELIVERY_ATTEMPTS.labels(d.integration).inc()
        started = time.perf_counter()
        try:
            result = notifier.deliver(verdict, d)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed attempt, not a dead deliverer
            log.exception("notifier raised", extra={"integration": d.integration})
            result = DeliveryResult("retry", error=f"notifier raised {type(exc).__name__}")
        elapsed = time.perf_counter() - started
        metrics.STAGE_SECONDS.labels("delivery").observe(elapsed)
        return self._record(claim, notifier, result, elapsed)

    def _record(self, claim: Claim, notifier: Notifier, result: DeliveryResult, elapsed: float) -> str:
        d = claim.delivery
        extra: dict[str, Any] = {"integration": d.integration, "delivery_id": d.id, "attempt": d.attempt,
                                 "endpoint": notifier.endpoint(), "status_code": result.status_code,
                                 "duration_s": round(elapsed, 4)}
        if result.outcome == "delivered":
            status, held = "delivered", self.outbox.complete(claim, result.status_code)
            if held:
                log.info("delivered", extra=extra)
        elif result.outcome == "gone":
            status = "disabled"
            held = self.outbox.dead_letter(claim, "gone_410", status_code=result.status_code, error=result.error or "",
                                           disable={"status_code": result.status_code, "delivery_id": d.id,
                                                    "fingerprint": notifier.fingerprint()})
            if held:
                metrics.INTEGRATION_DISABLED.labels(d.integration).set(1)
                log.error("endpoint answered 410 Gone: integration disabled; its deliveries go to the dead-letter "
                          "store until `synthspot dlq replay` or `synthspot dlq enable`", extra=extra)
        else:
            delay = None if result.outcome == "dead" else self.outbox.next_delay(d.attempt, result.retry_after_s)
            extra.update(error=result.error, retry_after_s=result.retry_after_s)
            if delay is None:
                status = "dead_letter"
                reason = "permanent_failure" if result.outcome == "dead" else "attempts_exhausted"
                held = self.outbox.dead_letter(claim, reason, status_code=result.status_code,
                                               error=result.error or "")
                if held:
                    log.error("delivery failed for good: moved to the dead-letter store", extra={**extra,
                                                                                                 "reason": reason})
            else:
                status = "retry"
                held = self.outbox.retry(claim, delay, status_code=result.status_code, error=result.error or "")
                if held:
                    log.warning("delivery attempt failed; retrying", extra={**extra, "next_in_s": round(delay, 3)})
        if not held:
            log.warning("lease lost before the result was recorded: another deliverer retries it", extra=extra)
            return "lease_lost"
        metrics.DELIVERIES.labels(d.integration, status).inc()
        return status
