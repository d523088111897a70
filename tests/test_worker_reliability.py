"""At-least-once: a killed worker, a stopped S3 server and a failed forward pass lose no check."""
from __future__ import annotations

import signal
import time

import pytest
import torch
from torch import nn

from helpers import encode, free_port, photo
from services import RedisServer, S3Server, WorkerProcess
from synthspot.worker.app import create_app
from synthspot.worker.settings import Settings
from synthspot.worker.submit import make_check, send, wait_for_verdicts


@pytest.fixture
def services(tmp_path, parity_checkpoint):
    redis = RedisServer(tmp_path / "redis").start()
    s3 = S3Server(tmp_path / "s3").start()
    s3.client().create_bucket(Bucket="uploads")
    env = {"SYNTHSPOT_REDIS_URL": redis.url, **s3.env(), "SYNTHSPOT_WEIGHTS": str(parity_checkpoint),
           "SYNTHSPOT_BATCH_SIZE": "4", "SYNTHSPOT_BATCH_WAIT_MS": "300", "SYNTHSPOT_STATE_DIR": str(tmp_path / "st"),
           "SYNTHSPOT_VISIBILITY_TIMEOUT_S": "10", "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2", "SYNTHSPOT_DEVICE": "cpu",
           "SYNTHSPOT_SOFT_SHUTDOWN_TIMEOUT_S": "2", "SYNTHSPOT_S3_MAX_ATTEMPTS": "2",
           "SYNTHSPOT_RECONCILE_AFTER_S": "20", "SYNTHSPOT_RECONCILE_INTERVAL_S": "2"}
    settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items()})
    workers: list[WorkerProcess] = []

    def worker(name: str) -> WorkerProcess:
        w = WorkerProcess({**env, "SYNTHSPOT_METRICS_PORT": str(free_port())}, tmp_path / f"{name}.log", name)
        workers.append(w.start())
        return w

    yield {"redis": redis, "s3": s3, "settings": settings, "app": create_app(settings), "worker": worker}
    for w in workers:
        w.stop(timeout=20)
    s3.stop()
    redis.stop()


def upload_checks(svc, n: int, prefix: str) -> list:
    client = svc["s3"].client()
    checks = []
    for i in range(n):
        client.put_object(Bucket="uploads", Key=f"{prefix}/{i}.png", Body=encode(photo(240, 240, seed=i), "PNG"))
        checks.append(make_check(f"s3://uploads/{prefix}/{i}.png", task_id=f"{prefix}-{i}"))
    return checks


def test_sigkill_mid_batch_loses_no_check(services):
    checks = upload_checks(services, 12, "kill")
    w1 = services["worker"]("w1")
    w1.wait_ready()
    send(checks, app=services["app"])
    ids = [c.task_id for c in checks]
    deadline = time.monotonic() + 120
    while not wait_for_verdicts(ids, settings=services["settings"], timeout_s=0):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    w1.kill(signal.SIGKILL)  # mid-run: some checks stored, others reserved, fetched or in a batch
    done_before = len(wait_for_verdicts(ids, settings=services["settings"], timeout_s=0))
    assert done_before < len(ids), "the worker finished everything before it was killed"
    w2 = services["worker"]("w2")
    verdicts = wait_for_verdicts(ids, settings=services["settings"], timeout_s=240)
    assert set(verdicts) == set(ids), w2.log()[-2000:]
    assert all(v.status == "scored" for v in verdicts.values())


def test_s3_outage_is_retried_not_turned_into_errors(services):
    checks = upload_checks(services, 3, "outage")
    w = services["worker"]("w1")
    w.wait_ready()
    services["s3"].stop()
    send(checks, app=services["app"])
    time.sleep(6)  # several failed attempts while the store is down
    assert wait_for_verdicts([c.task_id for c in checks], settings=services["settings"], timeout_s=0) == {}
    services["s3"].start()
    verdicts = wait_for_verdicts([c.task_id for c in checks], settings=services["settings"], timeout_s=120)
    assert len(verdicts) == 3 and all(v.status == "scored" for v in verdicts.values()), w.log()[-2000:]
    assert max(v.attempt for v in verdicts.values()) > 1


def test_sigterm_requeues_unfinished_checks(services):
    checks = upload_checks(services, 10, "term")
    w1 = services["worker"]("w1")
    w1.wait_ready()
    send(checks, app=services["app"])
    ids = [c.task_id for c in checks]
    while not wait_for_verdicts(ids, settings=services["settings"], timeout_s=0):
        time.sleep(0.05)
    assert w1.stop(timeout=60) is not None  # warm, then soft shutdown: finish or requeue, then exit
    services["worker"]("w2")
    verdicts = wait_for_verdicts(ids, settings=services["settings"], timeout_s=240)
    assert set(verdicts) == set(ids)


class FailsOnce(nn.Module):
    """A real model that raises on its first forward pass (a GPU error, an OOM)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.failed = inner, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.failed:
            self.failed = True
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.inner(x)


def test_failed_batch_retries_each_check(tmp_path, parity_checkpoint):
    from concurrent.futures import ThreadPoolExecutor

    from synthspot.detector import Detector
    from synthspot.integrations.objectstore import LocalObjectStore
    from synthspot.worker.pipeline import Pipeline, TransientError
    from synthspot.worker.runtime import Runtime

    settings = Settings(state_dir=tmp_path, batch_size=3, batch_wait_ms=500)
    rt = Runtime(settings)
    det = Detector.load(str(parity_checkpoint), device="cpu")
    det.model = FailsOnce(det.model)
    rt._detector = det
    store = LocalObjectStore(settings.bucket_root)
    payloads = []
    for i in range(3):
        store.put("b-1", f"{i}.png", encode(photo(seed=i), "PNG"))
        payloads.append(make_check(f"s3://b-1/{i}.png", task_id=f"fb-{i}").to_message())
    pipeline = Pipeline(rt)

    def attempt(payload):
        try:
            return pipeline.process(payload).outcome
        except TransientError as exc:
            return exc.reason

    with ThreadPoolExecutor(3) as pool:
        first = list(pool.map(attempt, payloads))
    assert first == ["inference_failed"] * 3  # one failed forward pass fails every check in it
    assert rt.verdict_store.recent() == []  # and stores nothing
    with ThreadPoolExecutor(3) as pool:
        second = list(pool.map(attempt, payloads))
    assert second == ["scored"] * 3
    rt.close()


def test_check_lost_by_the_broker_is_sent_again(services):
    """kombu pops a message before it records it as unacknowledged: a kill in between loses it.
    The reconciler finds the submitted check without a verdict and publishes it again."""
    from synthspot.worker.reconcile import record_pending

    [check] = upload_checks(services, 1, "lost")
    record_pending(services["redis"].client(), [check.to_message()], after_s=1)  # recorded, never published
    w = services["worker"]("w1")
    verdicts = wait_for_verdicts([check.task_id], settings=services["settings"], timeout_s=180)
    assert verdicts[check.task_id].status == "scored", w.log()[-2000:]
    assert "check sent again" in w.log()
    r = services["redis"].client()
    assert r.hget("synthspot:pending", check.task_id) is None and r.zscore("synthspot:pending_due", check.task_id) is None
