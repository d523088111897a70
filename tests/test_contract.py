"""The task contract: strict validation, and the published schemas and settings docs are current."""
from __future__ import annotations

import json
import subprocess

import pytest
from pydantic import ValidationError

from conftest import REPO, synthspot_cmd
from synthspot.worker.contract import Check, Verdict, schemas
from synthspot.worker.settings import Settings, load_settings, render_markdown, unknown_env


def test_check_validation_is_strict():
    ok = Check.model_validate({"task_id": "u-1", "image": {"url": "s3://uploads/a/b.png"},
                               "submitted_at": "2026-11-27T12:00:00Z"})
    assert ok.image.bucket == "uploads" and ok.image.key == "a/b.png"
    bad = [
        {"task_id": "u-1", "image": {"url": "s3://uploads/a.png"}, "extra": 1},  # unknown field
        {"task_id": 5, "image": {"url": "s3://uploads/a.png"}},  # wrong type
        {"task_id": "x" * 5000, "image": {"url": "s3://uploads/a.png"}},  # oversized
        {"task_id": "u-1", "image": {"url": "https://evil.example/a.png"}},  # not s3
        {"task_id": "u-1", "image": {"url": "s3://Bad_Bucket/a.png"}},
        {"task_id": "u-1", "image": {"url": "s3://uploads/a.png"}, "metadata": {"blob": "y" * 10000}},
        {"task_id": "u-1", "image": {"url": "s3://uploads/a.png"}, "submitted_at": "2026-11-27T12:00:00"},
        {"task_id": "u-1", "image": {"url": "s3://uploads/a.png"}, "schema": "synthspot.check/v9"},
    ]
    for payload in bad:
        with pytest.raises(ValidationError):
            Check.model_validate(payload)


def test_verdict_round_trips_json():
    v = Verdict(task_id="t", image={"url": "s3://b-1/k"}, status="scored", label="real", score=0.1, worker="w")
    assert Verdict.from_json(v.to_json()) == v
    assert json.loads(v.to_json())["schema"] == "synthspot.verdict/v1"


def test_published_schemas_are_current():
    for name, schema in schemas().items():
        path = REPO / "docs" / "schemas" / name
        assert json.loads(path.read_text()) == schema, f"regenerate {path}: synthspot schema ..."
    proc = subprocess.run(synthspot_cmd("schema", "check"), capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout) == schemas()["check-v1.json"]


def test_configuration_doc_is_generated_from_settings():
    assert (REPO / "docs" / "configuration.md").read_text() == render_markdown(), \
        "regenerate: python -m synthspot.worker.settings > docs/configuration.md"


def test_unknown_settings_are_errors(monkeypatch):
    monkeypatch.setenv("SYNTHSPOT_BATCHSIZE", "8")
    assert unknown_env() == ["SYNTHSPOT_BATCHSIZE"]
    with pytest.raises(ValueError, match="SYNTHSPOT_BATCHSIZE"):
        load_settings()


def test_settings_from_env_and_toml(monkeypatch, tmp_path):
    config = tmp_path / "synthspot.toml"
    config.write_text('batch_size = 8\nqueue = "from-file"\ns3_allowed_buckets = ["a"]\n')
    monkeypatch.setenv("SYNTHSPOT_CONFIG", str(config))
    monkeypatch.setenv("SYNTHSPOT_QUEUE", "from-env")
    monkeypatch.setenv("SYNTHSPOT_S3_ALLOWED_BUCKETS", "x,y")
    s = load_settings()
    assert (s.batch_size, s.queue, s.s3_allowed_buckets) == (8, "from-env", ["x", "y"])
    config.write_text("batch_sise = 8\n")
    with pytest.raises(ValueError, match="batch_sise"):
        load_settings()
    monkeypatch.delenv("SYNTHSPOT_CONFIG")
    assert Settings().embedded
