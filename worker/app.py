"""The Celery application of the scoring role.

Celery settings that make at-least-once hold for long GPU tasks (see docs/worker.md):

* JSON only: ``task_serializer``/``accept_content`` = json, so a pickled message is refused
  (pickle on a broker is remote code execution for anyone who can write to it);
* ``task_acks_late`` + ``task_reject_on_worker_lost``: a check is acknowledged only after its
  verdict is stored, and requeued if the worker dies mid-batch;
* the *threads* pool with ``concurrency`` = checks in flight (2 x batch size by default) and
  ``worker_prefetch_multiplier = 1``: every reserved check is being fetched, decoded or waiting
  in the batcher, which is what keeps a GPU busy, and no fork ever happens after CUDA starts
  (one process per GPU);
* one Redis ``visibility_timeout`` for broker and result transport options;
* ``worker_soft_shutdown_timeout``: on SIGTERM running checks get that long, then are requeued;
* the model is loaded on ``worker_ready`` in the process that runs the tasks, not in
  ``worker_process_init`` (whose handler must return within 4 s).
"""
from __future__ import annotations

import logging
import ssl
import threading
import warnings
from typing import Any

from celery import Celery, signals

from . import metrics
from .runtime import runtime_for
from .settings import Settings, load_settings
from .tasks import TASK_NAME, register_tasks

log = logging.getLogger(__name__)


def celery_config(s: Settings) -> dict[str, Any]:
    broker = s.effective_broker_url()
    transport_options: dict[str, Any] = {
        "visibility_timeout": s.visibility_timeout_s,
        # sweep for messages of dead workers often enough for the visibility timeout in use
        "unacked_restore_interval": max(1, min(10, s.visibility_timeout_s // 10)),
        "unacked_restore_throttle": 1,
        # a sweeping worker that dies holds kombu's restore mutex until it expires: keep it short
        "unacked_mutex_expire": min(300, max(15, s.visibility_timeout_s)),
    }
    if broker.startswith(("redis://", "rediss://")):
        # a broker that vanishes without closing TCP must not hang a publish or an ack forever
        transport_options.update(socket_timeout=30, socket_connect_timeout=5, health_check_interval=25)
    if broker.startswith("filesystem://"):
        folder = s.broker_dir / "queue"
        folder.mkdir(parents=True, exist_ok=True)
        transport_options.update(data_folder_in=str(folder), data_folder_out=str(folder),
                                 control_folder=str(s.broker_dir / "control"))
        (s.broker_dir / "control").mkdir(parents=True, exist_ok=True)
    tls: dict[str, Any] | bool = False
    if broker.startswith("rediss://"):
        # kombu reads TLS options from ``broker_use_ssl`` only (a transport option is ignored), and
        # without them it connects to rediss:// with certificate checks *off*: always verify
        tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if s.redis_tls_ca_file:
            tls["ssl_ca_certs"] = str(s.redis_tls_ca_file)
    return {
        "broker_url": broker,
        "broker_use_ssl": tls,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": s.queue,
        "task_routes": {TASK_NAME: {"queue": s.queue}},
        "worker_pool": "threads",
        "worker_consumer": "synthspot.worker.consumer:Consumer",  # survives a broker restart (consumer.py)
        "worker_concurrency": s.worker_concurrency,
        "worker_prefetch_multiplier": 1,
        "worker_soft_shutdown_timeout": s.soft_shutdown_timeout_s,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "worker_enable_remote_control": not broker.startswith("filesystem://"),
        "broker_channel_error_retry": True,
        "enable_utc": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app bound to ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    app = Celery("synthspot", set_as_current=False)
    app.config_from_object(celery_config(settings))
    app.synthspot_settings = settings  # type: ignore[attr-defined]
    register_tasks(app, settings)
    return app


# --- process wiring: only for processes started as workers --------------------------------------

def _sample_queue_length(settings: Settings, stop: threading.Event) -> None:
    rt = runtime_for(settings)
    while not stop.wait(15):
        try:
            metrics.QUEUE_LENGTH.labels(settings.queue).set(rt.redis.llen(settings.queue))
        except Exception:  # noqa: BLE001 - a metric must never take the worker down
            log.debug("queue length sample failed", exc_info=True)


def install_worker_hooks(app: Celery) -> None:
    """Metrics server, model warm-up and queue sampling for a worker process started from ``app``."""
    settings: Settings = app.synthspot_settings  # type: ignore[attr-defined]
    stop = threading.Event()
    # On a broker connection loss, running checks are deliberately left to finish: their verdicts go
    # to Redis, their acks follow the reconnect (worker/consumer.py), and a redelivered copy is
    # deduplicated. Celery warns about that default on every reconnect; the choice is explicit here.
    app.conf.worker_cancel_long_running_tasks_on_connection_loss = False
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5.1 we introduced an optional breaking change")
    state: dict[str, Any] = {}

    @signals.setup_logging.connect(weak=False)
    def _logging(**_: Any) -> None:
        """Keep synthspot's structured logging; a connected receiver stops Celery adding its own."""

    @signals.worker_init.connect(weak=False)
    def _init(**_: Any) -> None:
        metrics.precreate()
        metrics.READY.labels("worker").set(0)
        if settings.metrics_port:
            from .httpd import serve

            state["httpd"] = serve(settings.metrics_host, settings.metrics_port,
                                   lambda: runtime_for(settings).ready)

    @signals.worker_ready.connect(weak=False)
    def _ready(**_: Any) -> None:
        rt = runtime_for(settings)
        threading.Thread(target=rt.warm_up, name="synthspot-warmup", daemon=True).start()
        if not settings.embedded:
            from .reconcile import Reconciler
            from .submit import publish

            reconciler = Reconciler(rt.redis, lambda message: publish(app, [message]),
                                    after_s=settings.reconcile_after_s, interval_s=settings.reconcile_interval_s)
            threading.Thread(target=reconciler.run, args=(stop,), name="synthspot-reconcile", daemon=True).start()
            threading.Thread(target=_sample_queue_length, args=(settings, stop), daemon=True).start()

    @signals.worker_shutdown.connect(weak=False)
    def _shutdown(**_: Any) -> None:
        stop.set()
        runtime_for(settings).close()
        if "httpd" in state:
            state["httpd"].shutdown()
