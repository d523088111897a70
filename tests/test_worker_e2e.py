"""The scoring worker end to end: real Redis, a real S3-compatible server, a real worker process.

Images are uploaded with boto3, checks are submitted with ``synthspot.worker.submit``, a
``synthspot worker`` process scores them in batches, and verdicts are read back from Redis.
"""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from helpers import encode, free_port, photo
from services import RedisServer, S3Server, WorkerProcess, metric_value
from synthspot.detector import Detector
from synthspot.worker.app import create_app
from synthspot.worker.settings import Settings
from synthspot.worker.submit import make_check, send, wait_for_verdicts

BATCH = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory, parity_checkpoint):
    """Redis + S3 server + one worker, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("stack")
    redis = RedisServer(root / "redis").start()
    s3 = S3Server(root / "s3").start()
    client = s3.client()
    for bucket in ("uploads", "forbidden"):
        client.create_bucket(Bucket=bucket)
    env = {"SYNTHSPOT_REDIS_URL": redis.url, **s3.env(), "SYNTHSPOT_S3_ALLOWED_BUCKETS": "uploads",
           "SYNTHSPOT_WEIGHTS": str(parity_checkpoint), "SYNTHSPOT_BATCH_SIZE": str(BATCH),
           "SYNTHSPOT_BATCH_WAIT_MS": "200", "SYNTHSPOT_METRICS_PORT": str(free_port()),
           "SYNTHSPOT_STATE_DIR": str(root / "state"), "SYNTHSPOT_MAX_IMAGE_BYTES": "2000000",
           "SYNTHSPOT_DEVICE": "cpu", "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2"}
    worker = WorkerProcess(env, root / "worker.log").start()
    worker.wait_ready()
    settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items()})
    yield {"redis": redis, "s3": s3, "client": client, "worker": worker, "settings": settings, "env": env,
           "app": create_app(settings)}
    worker.stop()
    s3.stop()
    redis.stop()


def upload(stack, key: str, data: bytes, bucket: str = "uploads") -> str:
    stack["client"].put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def metrics_text(stack) -> str:
    port = stack["env"]["SYNTHSPOT_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_images_are_scored_in_batches_with_the_detectors_scores(stack, parity_checkpoint, tmp_path):
    images = {}
    for i in range(2 * BATCH):
        data = encode(photo(256 + 16 * i, 224 + 8 * i, seed=i), "PNG" if i % 2 else "JPEG")
        images[f"batch-{i}"] = (upload(stack, f"photos/{i}.img", data), data)
    checks = [make_check(url, task_id=tid, metadata={"upload": tid, "n": 1}) for tid, (url, _) in images.items()]
    before = metrics_text(stack)
    send(checks, app=stack["app"])
    verdicts = wait_for_verdicts(images, settings=stack["settings"], timeout_s=300)
    assert set(verdicts) == set(images)

    det = Detector.load(str(parity_checkpoint), device="cpu")
    for tid, (url, data) in images.items():
        v = verdicts[tid]
        path = tmp_path / tid
        path.write_bytes(data)
        [want] = det.score_sources([str(path)])
        assert v.status == "scored" and v.error is None
        assert v.score == pytest.approx(want.score, abs=1e-4)
        assert v.image.url == url and v.metadata == {"upload": tid, "n": 1}
        assert v.label in ("synthetic", "review", "real")
        assert v.sha256 == __import__("hashlib").sha256(data).hexdigest()
        assert v.model.weights_sha256 == det.weights_sha256
        assert {"queue_wait", "fetch", "decode", "inference", "total"} <= set(v.timings)
        assert v.worker

    after = metrics_text(stack)
    scored = metric_value(after, "synthspot_tasks_total", outcome="scored") - \
        metric_value(before, "synthspot_tasks_total", outcome="scored")
    assert scored == 2 * BATCH
    batches = metric_value(after, "synthspot_batch_size_count") - metric_value(before, "synthspot_batch_size_count")
    images_in_batches = metric_value(after, "synthspot_batch_size_sum") - metric_value(before, "synthspot_batch_size_sum")
    assert images_in_batches == 2 * BATCH
    assert batches < 2 * BATCH, "checks were not batched across tasks"
    assert 'synthspot_model_info{' in after and metric_value(after, "synthspot_ready", role="worker") == 1


def test_error_verdicts_have_reason_codes(stack):
    cases = {
        "err-missing": ("s3://uploads/nope.png", "object_not_found"),
        "err-bucket": (upload(stack, "a.png", encode(photo(), "PNG"), bucket="forbidden"), "bucket_not_allowed"),
        "err-large": (upload(stack, "big.png", b"\x89PNG" + b"\0" * 2_100_000), "too_large"),
        "err-html": (upload(stack, "page.jpg", b"<html><body>hello</body></html>"), "not_an_image"),
        "err-trunc": (upload(stack, "trunc.png", encode(photo(), "PNG")[:500]), "truncated"),
        "err-empty": (upload(stack, "empty.png", b""), "empty"),
    }
    send([make_check(url, task_id=tid) for tid, (url, _) in cases.items()], app=stack["app"])
    # malformed checks, sent raw: unknown field, wrong type, not even a dict
    app = stack["app"]
    app.send_task("synthspot.check", args=[{"task_id": "err-invalid", "image": {"url": "s3://uploads/a.png"},
                                            "unexpected": 1}], queue="synthspot.score")
    app.send_task("synthspot.check", args=[{"task_id": "err-types", "image": 42}], queue="synthspot.score")
    raw = app.send_task("synthspot.check", args=["just a string"], queue="synthspot.score")
    wanted = [*cases, "err-invalid", "err-types", f"invalid-{raw.id}"]
    verdicts = wait_for_verdicts(wanted, settings=stack["settings"], timeout_s=120)
    assert set(verdicts) == set(wanted), stack["worker"].log()[-3000:]
    for tid, (_, reason) in cases.items():
        assert verdicts[tid].status == "error" and verdicts[tid].label == "error"
        assert verdicts[tid].error.reason == reason, verdicts[tid]
    for tid in ("err-invalid", "err-types", f"invalid-{raw.id}"):
        assert verdicts[tid].error.reason == "invalid_task"
    text = metrics_text(stack)
    for reason in ("object_not_found", "bucket_not_allowed", "too_large", "not_an_image", "invalid_task"):
        assert metric_value(text, "synthspot_errors_total", reason=reason) >= 1, reason
    assert stack["worker"].proc.poll() is None


def test_redelivered_task_keeps_its_first_verdict(stack):
    url = upload(stack, "dup.png", encode(photo(seed=7), "PNG"))
    send([make_check(url, task_id="dup-1")], app=stack["app"])
    first = wait_for_verdicts(["dup-1"], settings=stack["settings"])["dup-1"]
    # the platform resubmits, and the object even changed meanwhile: still the first verdict
    upload(stack, "dup.png", encode(photo(seed=8), "PNG"))
    before = metric_value(metrics_text(stack), "synthspot_tasks_total", outcome="duplicate")
    send([make_check(url, task_id="dup-1")] * 2, app=stack["app"])
    deadline = time.monotonic() + 60
    while metric_value(metrics_text(stack), "synthspot_tasks_total", outcome="duplicate") < before + 2:
        assert time.monotonic() < deadline, "duplicates were not processed"
        time.sleep(0.2)
    again = wait_for_verdicts(["dup-1"], settings=stack["settings"])["dup-1"]
    assert again == first
    r = stack["redis"].client()
    assert r.zscore("synthspot:verdicts", "dup-1") is not None


def test_pickle_message_is_refused_and_worker_stays_up(stack):
    app = stack["app"]
    app.send_task("synthspot.check", args=[{"task_id": "pickled", "image": {"url": "s3://uploads/a.png"}}],
                  queue="synthspot.score", serializer="pickle")
    url = upload(stack, "after-pickle.png", encode(photo(seed=9), "PNG"))
    send([make_check(url, task_id="after-pickle")], app=app)
    assert "after-pickle" in wait_for_verdicts(["after-pickle"], settings=stack["settings"], timeout_s=120)
    assert wait_for_verdicts(["pickled"], settings=stack["settings"], timeout_s=1) == {}
    log = stack["worker"].log()
    assert "application/x-python-serialize" in log or "untrusted content" in log.lower()
    assert stack["worker"].proc.poll() is None


def test_verdicts_command_reads_redis(stack):
    import subprocess

    from conftest import synthspot_cmd

    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("SYNTHSPOT_")}, **stack["env"]}
    proc = subprocess.run(synthspot_cmd("verdicts", "--format", "jsonl", "--limit", "3"), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 3 and all(r["schema"] == "synthspot.verdict/v1" for r in rows)
