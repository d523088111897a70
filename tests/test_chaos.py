"""Chaos: the whole stack (Redis, S3, workers, deliverers, a real receiver) while its parts fail."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers import encode, free_port, photo
from services import RedisServer, S3Server, WorkerProcess


@pytest.fixture(scope="module")
def cheap_weights(tmp_path_factory) -> Path:
    """A random ResNet-50 whose weights entry asks for a 32 px center crop: real inference, ~50x cheaper."""
    import torch

    from synthspot.detector.models import create_model

    path = tmp_path_factory.mktemp("chaos-weights") / "resnet50-crop32.pth"
    torch.manual_seed(0)
    torch.save({"model": create_model("resnet50").state_dict(), "synthspot": {"weights_cfg": {
        "arch": "resnet50", "crop_size": 32, "policy": "center", "upsize_small_to": None, "threshold": 0.5}}}, path)
    return path


def test_worker_survives_a_redis_restart_with_checks_in_flight(tmp_path, cheap_weights):
    """Regression (found by the chaos run): with Celery 5.7 a worker holding unacknowledged checks when
    Redis went away died with "Unrecoverable error: AttributeError('NoneType' object has no attribute
    'hostname')" whenever the loss was seen on the pub/sub socket first: the broken connection was
    collected, then closed again through its detached transport (worker/consumer.py). Killing the
    pub/sub clients right before the shutdown makes that order certain."""
    import redis as redislib

    from synthspot.worker.app import create_app
    from synthspot.worker.settings import Settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    redis = RedisServer(tmp_path / "redis").start()
    s3 = S3Server(tmp_path / "s3").start()
    worker = None
    try:
        client = s3.client()
        client.create_bucket(Bucket="uploads")
        for i in range(8):
            client.put_object(Bucket="uploads", Key=f"{i}.png", Body=encode(photo(40, 40, seed=i), "PNG"))
        env = {"SYNTHSPOT_REDIS_URL": redis.url, **s3.env(), "SYNTHSPOT_WEIGHTS": str(cheap_weights),
               "SYNTHSPOT_DEVICE": "cpu", "SYNTHSPOT_STATE_DIR": str(tmp_path / "st"),
               # the checks wait in the batcher for 3 s: reserved, unacknowledged, when Redis goes away
               "SYNTHSPOT_BATCH_SIZE": "64", "SYNTHSPOT_CONCURRENCY": "8", "SYNTHSPOT_BATCH_WAIT_MS": "3000",
               "SYNTHSPOT_VISIBILITY_TIMEOUT_S": "60", "SYNTHSPOT_RECONCILE_AFTER_S": "120",
               "SYNTHSPOT_METRICS_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
        settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items() if k.startswith("SYNTHSPOT_")})
        app = create_app(settings)
        worker = WorkerProcess(env, tmp_path / "w1.log", "w1").start()
        worker.wait_ready()
        before = [make_check(f"s3://uploads/{i}.png", task_id=f"before-{i}") for i in range(4)]
        send(before, app=app)
        deadline = time.monotonic() + 30
        while worker.log().count("] received") < 4:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.05)

        pipe = redislib.Redis.from_url(redis.url).pipeline(transaction=False)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        pipe.execute_command("SHUTDOWN")  # AOF written, every connection dropped
        with pytest.raises(redislib.ConnectionError):
            pipe.execute()
        redis.proc.wait(30)
        redis.proc = None
        time.sleep(0.5)
        redis.start()

        assert len(wait_for_verdicts([c.task_id for c in before], settings=settings, timeout_s=60)) == 4
        after = [make_check(f"s3://uploads/{i}.png", task_id=f"after-{i}") for i in range(4, 8)]
        send(after, app=app)  # consumed only if the worker reconnected
        verdicts = wait_for_verdicts([c.task_id for c in after], settings=settings, timeout_s=60)
        log = worker.log()
        assert "Connection to broker lost" in log
        assert "Unrecoverable error" not in log, log[-3000:]
        assert worker.proc.poll() is None
        assert len(verdicts) == 4, log[-3000:]
        # the checks held across the restart were acknowledged through their old channel, not left for redelivery
        r = redis.client()
        deadline = time.monotonic() + 10
        while r.hlen("unacked") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.hlen("unacked") == 0
    finally:
        if worker:
            worker.stop(timeout=20)
        s3.stop()
        redis.stop()
