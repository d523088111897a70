"""Reference parity: every logit of the parity kit within 1e-3, through the API and the CLI."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import synthspot_cmd

TOL = 1e-3
MODES = {
    # expected.json key: (preset overrides, CLI flags)
    "no_crop": ({"policy": "full", "upsize_small_to": None}, ["--crop", "none", "--no-upsize-small"]),
    "crop_224": ({"policy": "center", "crop_size": 224, "upsize_small_to": None},
                 ["--crop", "224", "--no-upsize-small"]),
}


def expected(parity_dir: Path) -> dict:
    return json.loads((parity_dir / "expected.json").read_text())["outputs"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_python_api_reproduces_reference_logits(mode, parity_dir, parity_detector_factory):
    det = parity_detector_factory(**MODES[mode][0])
    want = expected(parity_dir)[mode]
    files = sorted(str(parity_dir / "images" / name) for name in want)
    results = list(det.score_sources(files))
    assert [Path(r.source).name for r in results] == sorted(want)
    for r in results:
        assert r.error is None, r
        ref = want[Path(r.source).name]
        assert r.logit == pytest.approx(ref["logit"], abs=TOL), r.source
        assert r.score == pytest.approx(ref["probability"], abs=TOL)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_cli_reproduces_reference_logits(mode, parity_dir, parity_checkpoint):
    want = expected(parity_dir)[mode]
    proc = subprocess.run(synthspot_cmd("score", str(parity_dir / "images"), "--weights", str(parity_checkpoint),
                                        "--format", "jsonl", "--device", "cpu", *MODES[mode][1]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == sorted(want)
    for row in rows:
        ref = want[Path(row["path"]).name]
        assert row["error"] is None
        assert abs(row["logit"] - ref["logit"]) <= TOL, row


def test_parity_is_sensitive_to_preprocessing(parity_dir, parity_detector_factory):
    """Guard against a parity test that cannot fail: upsizing the small image moves its logit."""
    det = parity_detector_factory(policy="full", upsize_small_to=256)
    small = parity_dir / "images" / "fake_small_100x80.png"
    [r] = det.score_sources([str(small)])
    assert abs(r.logit - expected(parity_dir)["no_crop"][small.name]["logit"]) > 10 * TOL
