"""The bad-input corpus (tests/make_bad_inputs.py) through every way an image reaches synthspot.

(a) ``decode_image`` and a ``Detector`` in this process; (b) ``synthspot score DIR --all-files``;
(c) uploaded to a real S3-compatible server and checked by a real ``synthspot worker`` over a
real Redis. Every case must give its expected reason code (or a score), nothing may crash the
worker, and ``synthspot_errors_total{reason}`` must count each reason once per case.
"""
from __future__ import annotations

import json
import math
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, synthspot_cmd
from helpers import free_port
from services import metric_by_label
from make_bad_inputs import CASES, get_args_parser, main, markdown_table
from synthspot.detector import ImageError, decode_image
from synthspot.detector.errors import IMAGE_REASONS

pytestmark = pytest.mark.timeout(400)


def allowed(expect: dict) -> set[str]:
    """The acceptable outcomes of a case: reason codes, or ``scored``."""
    if expect.get("scored"):
        return {"scored"}
    return {expect["reason"]} if "reason" in expect else set(expect["reasons"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bad-inputs")
    assert main(get_args_parser().parse_args([str(out)])) == 0
    return out, json.loads((out / "expected.json").read_text())


def test_corpus_is_large_varied_and_deterministic(corpus, tmp_path):
    out, expected = corpus
    assert len(expected) >= 50 and set(expected) == {c.name for c in CASES}
    outcomes = Counter(o for e in expected.values() for o in allowed(e))
    # every image reason a decoder can give is exercised (not_found/unreadable/too_large are about
    # files and caps, covered by test_cli_score.py, test_decode.py and test_worker_e2e.py)
    assert set(IMAGE_REASONS) - {"not_found", "unreadable", "too_large"} <= set(outcomes)
    assert outcomes["scored"] >= 20
    again = tmp_path / "again"
    main(get_args_parser().parse_args([str(again)]))
    for name in expected:
        assert (again / name).read_bytes() == (out / name).read_bytes(), f"{name} is not deterministic"


def test_reliability_doc_lists_the_corpus():
    doc = (REPO / "docs" / "reliability.md").read_text()
    assert markdown_table() in doc, "update docs/reliability.md: python tests/make_bad_inputs.py OUT_DIR --table"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decode_image(case, corpus):
    out, expected = corpus
    expect = expected[case.name]
    try:
        img = decode_image(out / case.name)
    except ImageError as exc:
        assert exc.reason in allowed(expect), f"{case.name}: {exc.reason}: {exc}"
        assert exc.reason in IMAGE_REASONS
        return
    assert "scored" in allowed(expect), f"{case.name} decoded but should fail with {allowed(expect)}"
    assert img.mode == "RGB" and min(img.size) >= 16
    if "size" in expect:
        assert list(img.size) == expect["size"]
    if expect.get("first_frame") == "red":
        arr = np.asarray(img, dtype=float)
        assert arr[..., 0].mean() > 200 and arr[..., 2].mean() < 50, "not the first frame"


def test_detector_scores_or_reports_every_case(corpus, parity_detector_factory):
    out, expected = corpus
    det = parity_detector_factory(policy="center")  # one view per image: the corpus is about decoding
    results = list(det.score_sources([str(out / name) for name in expected], workers=2))
    assert [Path(r.source).name for r in results] == list(expected)
    for r in results:
        want = allowed(expected[Path(r.source).name])
        if r.error:
            assert r.error.reason in want, (r.source, r.error.reason, str(r.error))
        else:
            assert want == {"scored"}, r.source
            assert 0.0 <= r.score <= 1.0 and math.isfinite(r.logit)


def test_score_command_reports_every_file(corpus, parity_checkpoint):
    out, expected = corpus
    proc = subprocess.run(synthspot_cmd("score", str(out), "--format", "jsonl", "--all-files", "--weights",
                                        str(parity_checkpoint), "--device", "cpu", "--batch-size", "16"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == set(expected) | {"expected.json"}
    assert rows.pop("expected.json")["error"]["reason"] == "not_an_image"  # a JSON file is no image either
    for name, row in rows.items():
        want = allowed(expected[name])
        if row["error"]:
            assert row["error"]["reason"] in want, (name, row["error"])
        else:
            assert want == {"scored"}, name
            assert 0.0 <= row["score"] <= 1.0 and row["label"] in ("real", "synthetic")
    failed = sum(1 for r in rows.values() if r["error"]) + 1
    assert f", {failed} failed" in proc.stderr


def test_worker_gives_every_case_its_verdict_and_counts_reasons(corpus, parity_checkpoint, redis_server,
                                                                 s3_server, tmp_path):
    from services import WorkerProcess
    from synthspot.worker.app import create_app
    from synthspot.worker.settings import Settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    out, expected = corpus
    env = {"SYNTHSPOT_REDIS_URL": redis_server.url, **s3_server.env(), "SYNTHSPOT_S3_ALLOWED_BUCKETS": "uploads",
           "SYNTHSPOT_WEIGHTS": str(parity_checkpoint), "SYNTHSPOT_BATCH_SIZE": "8",
           "SYNTHSPOT_BATCH_WAIT_MS": "50", "SYNTHSPOT_METRICS_PORT": str(free_port()),
           "SYNTHSPOT_METRICS_HOST": "127.0.0.1", "SYNTHSPOT_STATE_DIR": str(tmp_path / "state"),
           "SYNTHSPOT_DEVICE": "cpu", "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2"}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()  # loads its model while we upload
    try:
        client = s3_server.client()
        client.create_bucket(Bucket="uploads")
        task_ids = {}
        for i, name in enumerate(expected):
            client.put_object(Bucket="uploads", Key=f"corpus/{name}", Body=(out / name).read_bytes())
            task_ids[f"bad-{i:03d}"] = name
        settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items()})
        worker.wait_ready()
        send([make_check(f"s3://uploads/corpus/{name}", task_id=tid) for tid, name in task_ids.items()],
             app=create_app(settings))
        verdicts = wait_for_verdicts(task_ids, settings=settings, timeout_s=180)
        assert set(verdicts) == set(task_ids), worker.log()[-3000:]

        reasons: Counter[str] = Counter()
        for tid, name in task_ids.items():
            v, want = verdicts[tid], allowed(expected[name])
            if v.status == "error":
                assert v.label == "error" and v.error.reason in want, (name, v.error)
                assert v.sha256 and v.size_bytes == (out / name).stat().st_size
                reasons[v.error.reason] += 1
            else:
                assert want == {"scored"}, name
                assert 0.0 <= v.score <= 1.0 and v.label in ("synthetic", "review", "real")

        assert worker.proc.poll() is None, "the worker died"
        text = worker.metrics()
        errors = {k: v for k, v in metric_by_label(text, "synthspot_errors_total").items() if v}
        assert errors == dict(reasons), "synthspot_errors_total does not count one error per case"
        tasks = metric_by_label(text, "synthspot_tasks_total")
        assert tasks["error"] == sum(reasons.values()) and tasks["scored"] == len(task_ids) - sum(reasons.values())
        assert tasks["retried"] == 0
        records = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        assert not [r for r in records if r["level"] in ("error", "critical") or "exc" in r], \
            "the worker logged errors or tracebacks"
    finally:
        worker.stop()
