"""Chaos: the whole stack (Redis, S3, workers, deliverers, a real receiver) while its parts fail.

``test_chaos_run`` runs bench/chaos.py with 1000 checks and compressed timings. It checks the
outcome (every check's verdict accepted by the receiver, none lost, never two different verdicts
for one task, one verdict per task in Redis) and that each fault really hit work in flight, from
the run's own evidence: the killed worker's unfinished checks, pending checks at the Redis
restart and verdicts stored by every worker after it, the receiver's 500s and the sender's
timeouts with deliveries that needed more than one attempt, S3 fetch failures during the outage.
A run without the faults could not pass.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from helpers import encode, free_port, photo
from services import RedisServer, S3Server, WorkerProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chaos  # noqa: E402


@pytest.fixture(scope="module")
def cheap_weights(tmp_path_factory) -> Path:
    """A random ResNet-50 whose weights entry asks for a 32 px center crop: real inference, ~50x cheaper."""
    path = tmp_path_factory.mktemp("chaos-weights") / "resnet50-crop32.pth"
    chaos.write_weights(path, crop=32)
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


@pytest.mark.slow
def test_chaos_run(tmp_path, cheap_weights):
    args = chaos.get_args_parser().parse_args([
        "--tasks", "1000", "--weights", str(cheap_weights), "--workdir", str(tmp_path / "chaos"),
        "--backlog", "200", "--redis-down", "1", "--receiver-window", "8", "--s3-window", "6",
        "--deadline", "420", "--quiet"])
    f = chaos.main(args)
    report = json.dumps(f, indent=1)

    # the outcome: nothing lost, nothing contradictory, nothing left behind
    assert f["finished"], report
    assert f["submitted"] == f["accepted"] == f["stored_verdicts"] == 1000, report
    assert f["lost"] == 0 and f["conflicting"] == 0, report
    assert f["error_verdicts"] == 0, report  # transient faults are retried, never turned into error verdicts
    assert f["pending_left"] == 0 and f["outbox_left"] == 0 and f["dead_lettered"] == 0, report
    assert f["unverified"] == 0 and f["bad_webhook_id"] == 0, report  # every POST signed and verified
    assert f["deliveries"] > f["accepted"], report  # failed attempts were made again
    assert f["worker_crashes"] == 0 and f["workers_died"] == [], report

    # each fault happened, and hit work in flight
    faults = f["faults"]
    assert set(faults) == {"kill", "redis", "receiver", "s3"}, report
    kill = faults["kill"]
    assert kill["inflight"] > 0 and kill["unfinished"] > 0, report  # SIGKILL while it held checks
    assert kill["unfinished_recovered"] == kill["unfinished"], report
    redis = faults["redis"]
    assert redis["pending"] > 0 and redis["queued"] + redis["unacked"] > 0, report
    assert redis["verdicts_after_restart"] >= redis["verdicts_before"], report  # the AOF kept them
    assert redis["scored_after_restart"] and all(n > 0 for n in redis["scored_after_restart"].values()), report
    receiver = faults["receiver"]
    assert receiver["answered_500"] > 0 and receiver["sender_timeouts"] > 0, report
    assert receiver["deliveries_with_attempt_gt1"] > 0 and receiver["deliverer_retries"] > 0, report
    s3 = faults["s3"]
    assert s3["inflight_at_stop"] > 0 and s3["store_unavailable_during"] > 0, report
    assert f["task_retries"].get("store_unavailable", 0) > 0, report
