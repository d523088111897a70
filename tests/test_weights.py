"""Weights: every checkpoint layout loads, bad files fail with a clear error naming the file,
named weights download from a real HTTP server with a recorded, verified sha256."""
from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import pytest
import torch
import torchvision

from conftest import synthspot_cmd
from helpers import run_on_terminal, serve_directory
from synthspot.detector import Detector, WeightsError
from synthspot.detector.checkpoint import read_checkpoint
from synthspot.detector.weights import fetch, get_weights_cfg, resolve, verify


@pytest.fixture(scope="module")
def parity_state(parity_checkpoint):
    return torch.load(parity_checkpoint, weights_only=True)["model"]


@pytest.mark.parametrize("layout", ["reference", "bare", "module_prefix", "state_dict_key"])
def test_checkpoint_layouts_give_identical_logits(layout, parity_state, parity_checkpoint, tmp_path, parity_dir):
    path = tmp_path / f"{layout}.pth"
    if layout == "reference":
        path = parity_checkpoint
    elif layout == "bare":
        torch.save(parity_state, path)
    elif layout == "module_prefix":
        torch.save({"model": {f"module.{k}": v for k, v in parity_state.items()}, "total_steps": 3}, path)
    else:
        torch.save({"state_dict": parity_state}, path)
    det = Detector.load(str(path), device="cpu", preset_overrides={"policy": "center", "upsize_small_to": None})
    ref = Detector.load(str(parity_checkpoint), device="cpu",
                        preset_overrides={"policy": "center", "upsize_small_to": None})
    img = str(parity_dir / "images" / "real.png")
    [a], [b] = det.score_sources([img]), ref.score_sources([img])
    assert a.logit == pytest.approx(b.logit, abs=1e-6)
    assert det.cfg.arch == "resnet50"


def test_wrong_architecture_names_the_file(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save({"model": torchvision.models.resnet18(num_classes=1).state_dict()}, path)
    with pytest.raises(WeightsError) as info:
        Detector.load(str(path), device="cpu")
    assert str(path) in str(info.value) and info.value.reason == "wrong_architecture"
    # forcing the architecture reports what does not fit
    from synthspot.detector.checkpoint import build_model

    with pytest.raises(WeightsError, match="not resnet50 weights"):
        build_model("resnet50", read_checkpoint(path))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10, b"PK\x03\x04truncated-zip"])
def test_corrupt_file_is_a_clear_error(content, tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and info.value.reason == "corrupt_weights"


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/synthspot-pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "evil": Payload()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(WeightsError, match="not a plain weights file"):
        read_checkpoint(path)
    assert not Path("/tmp/synthspot-pwned").exists()


def test_cli_reports_bad_weights_without_traceback(tmp_path, parity_dir):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    proc = subprocess.run(synthspot_cmd("score", str(parity_dir / "images" / "real.png"), "--weights", str(bad)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_name_lists_valid_ones():
    with pytest.raises(WeightsError, match="blur_jpg_prob0.5"):
        get_weights_cfg("resnet50.nope")


def test_fetch_from_local_http_mirror_records_and_verifies_sha256(tmp_path, parity_checkpoint):
    served = tmp_path / "served"
    served.mkdir()
    cfg = get_weights_cfg("blur_jpg_prob0.5")
    (served / cfg.filename).write_bytes(parity_checkpoint.read_bytes())
    cache = tmp_path / "cache"
    with serve_directory(served) as url:
        proc = subprocess.run(synthspot_cmd("weights", "fetch", "blur_jpg_prob0.5", "--cache-dir", str(cache),
                                            "--mirror", url), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CC BY-NC-SA 4.0" in proc.stderr
    resolved = resolve("resnet50.cnndetection_bj05", cache_dir=cache, download_missing=False)
    assert resolved.path.read_bytes() == parity_checkpoint.read_bytes()
    assert verify(resolved) == resolved.expected_sha256
    det = Detector.from_resolved(resolved, device="cpu")
    assert det.weights_sha256 == resolved.expected_sha256
    # a file changed after it was fetched no longer loads
    with open(resolved.path, "r+b") as fh:
        fh.seek(-100, os.SEEK_END)
        fh.write(b"\0" * 10)
    with pytest.raises(WeightsError) as info:
        Detector.load("blur_jpg_prob0.5", cache_dir=cache, download=False, device="cpu")
    assert info.value.reason == "checksum_mismatch"


def test_fetch_shows_a_progress_bar_on_a_terminal(tmp_path, parity_checkpoint):
    served = tmp_path / "served"
    served.mkdir()
    cfg = get_weights_cfg("blur_jpg_prob0.5")
    (served / cfg.filename).write_bytes(parity_checkpoint.read_bytes())
    with serve_directory(served) as url:
        status, _, terminal = run_on_terminal(synthspot_cmd("weights", "fetch", "blur_jpg_prob0.5", "--cache-dir",
                                                            str(tmp_path / "cache"), "--mirror", url), timeout=120)
    assert status == 0, terminal
    assert f"{cfg.name}.pth" in terminal and "100%" in terminal  # the bar, named for the file, ran to the end


def test_https_url_and_file_url_locations(tmp_path, parity_checkpoint):
    served = tmp_path / "served"
    served.mkdir()
    (served / "mine.pth").write_bytes(parity_checkpoint.read_bytes())
    with serve_directory(served) as url:
        r = resolve(f"{url}/mine.pth", cache_dir=tmp_path / "cache", progress=False)
    assert r.expected_sha256 == verify(r)
    # cached: no server needed any more
    assert resolve(f"{url}/mine.pth", cache_dir=tmp_path / "cache").path == r.path
    f = resolve(f"file://{parity_checkpoint}")
    assert f.path == parity_checkpoint


def test_failed_download_is_a_clear_error(tmp_path):
    with serve_directory(tmp_path) as url:
        with pytest.raises(WeightsError) as info:
            fetch("blur_jpg_prob0.1", cache_dir=tmp_path / "cache", mirror=url, progress=False)
    assert info.value.reason == "download_failed" and "404" in str(info.value)
    assert not list((tmp_path / "cache").rglob("*.pth"))
