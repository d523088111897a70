"""The shipped default model: inside the package, loaded with no network and no configuration,
checksum-verified, and scoring the shipped samples as pinned."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, synthspot_cmd
from synthspot.detector import DEFAULT_WEIGHTS, Detector, WeightsError, get_weights_cfg
from synthspot.detector.weights import PACKAGE_WEIGHTS_DIR, resolve

SAMPLES = REPO / "synthspot" / "samples"
# golden scores of the shipped samples (tiles policy, CPU); a change means the model or its
# preprocessing changed
PINNED = {
    "fake_astronaut_deconv.png": 0.9997, "fake_chelsea_nearest.png": 0.9991, "fake_coffee_bilinear.png": 0.9916,
    "fake_rocket_pixelshuffle.png": 0.9570, "real_astronaut.jpg": 0.1114, "real_chelsea.jpg": 0.0270,
    "real_coffee.jpg": 0.0091, "real_rocket.jpg": 0.0036,
}


def test_default_weights_ship_inside_the_package():
    cfg = get_weights_cfg(DEFAULT_WEIGHTS)
    path = PACKAGE_WEIGHTS_DIR / cfg.file
    assert path.is_file() and path.stat().st_size <= 20 * 2 ** 20
    assert cfg.sha256 and cfg.license == "Apache-2.0" and not cfg.non_commercial
    assert resolve(None, cache_dir=Path("/nonexistent"), download_missing=False).path == path


def test_default_model_scores_the_samples_as_pinned():
    det = Detector.load(device="cpu")
    assert det.name == DEFAULT_WEIGHTS and det.weights_sha256 == get_weights_cfg(DEFAULT_WEIGHTS).sha256
    results = {Path(r.source).name: r for r in det.score_sources(sorted(str(p) for p in SAMPLES.glob("*.*g")))}
    assert set(results) == set(PINNED)
    for name, score in PINNED.items():
        assert results[name].score == pytest.approx(score, abs=2e-3), name
        assert results[name].label == ("synthetic" if name.startswith("fake") else "real")


def test_a_corrupted_shipped_file_is_refused(tmp_path):
    from synthspot.detector.weights import ResolvedWeights

    cfg = get_weights_cfg(DEFAULT_WEIGHTS)
    copy = tmp_path / cfg.file
    data = bytearray((PACKAGE_WEIGHTS_DIR / cfg.file).read_bytes())
    data[-50] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as info:
        Detector.from_resolved(ResolvedWeights(cfg, copy, cfg.sha256), device="cpu")
    assert info.value.reason == "checksum_mismatch"


def test_score_uses_the_shipped_model_with_no_configuration(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # no cache, no settings, no network needed
    proc = subprocess.run(synthspot_cmd("score", str(SAMPLES), "--format", "jsonl"), capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(PINNED) and all(r["error"] is None for r in rows)
    assert DEFAULT_WEIGHTS in proc.stderr and "non-commercial" not in proc.stderr


def test_demo_runs_the_whole_loop_with_no_configuration(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(synthspot_cmd("demo"), capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert len(lines) == len(PINNED)
    labels = {line.split()[2] for line in lines}
    assert labels <= {"synthetic", "review", "real"} and "synthetic" in labels and "real" in labels
    assert (tmp_path / ".local" / "state" / "synthspot" / "demo" / "verdicts.jsonl").is_file()
