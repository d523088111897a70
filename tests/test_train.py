"""`synthspot train` end to end on a few images: trains, validates, keeps the best epoch, resumes,
and exports a weights file that `synthspot score` uses with nothing else."""
from __future__ import annotations

import json
import random
import subprocess

import torch

from conftest import synthspot_cmd
from helpers import photo
from synthspot.detector.preprocess import TrainPreset


def make_data(root):
    for split in ("train", "val"):
        for cls in ("cats", "dogs"):
            for label, seed in (("0_real", 0), ("1_fake", 50)):
                folder = root / split / cls / label
                folder.mkdir(parents=True)
                for i in range(3):
                    img = photo(96, 80, seed=seed + i + (split == "val") * 7)
                    if label == "1_fake":  # an up-sampling trace, as generators leave
                        img = img.resize((48, 40)).resize((96, 80), 0)
                    img.save(folder / f"{i}.png")


def test_train_end_to_end_and_resume(tmp_path):
    make_data(tmp_path / "data")
    out = tmp_path / "run"
    common = ["train", str(tmp_path / "data"), "--out", str(out), "--batch-size", "4", "--crop-size", "64",
              "--load-size", "0", "--workers", "0", "--max-steps-per-epoch", "2", "--arch", TRAIN_ARCH]
    proc = subprocess.run(synthspot_cmd(*common, "--epochs", "2"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["epochs_run"] == 2 and 0 <= summary["best_epoch"] <= 1
    history = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith('{"epoch"')]
    assert [h["epoch"] for h in history] == [0, 1] and all(0 <= h["ap"] <= 1 for h in history)

    proc = subprocess.run(synthspot_cmd(*common, "--epochs", "3", "--resume"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["epochs_run"] == 3
    assert [json.loads(line)["epoch"] for line in proc.stderr.splitlines() if line.startswith('{"epoch"')] == [2]

    exported = torch.load(out / "weights.pth", weights_only=True)
    assert exported["synthspot"]["weights_cfg"]["arch"] == TRAIN_ARCH
    threshold = exported["synthspot"]["weights_cfg"]["threshold"]
    score = subprocess.run(synthspot_cmd("score", str(tmp_path / "data" / "val"), "--weights", str(out / "weights.pth"),
                                         "--format", "jsonl"), capture_output=True, text=True, timeout=300)
    assert score.returncode == 0, score.stderr
    assert len(score.stdout.splitlines()) == 12 and f"threshold {threshold:g}" in score.stderr


def test_train_preset_is_seeded_and_follows_the_recipe():
    img = photo(300, 260, seed=1)
    preset = TrainPreset(blur_prob=1.0, jpeg_prob=1.0, jpeg_libs=("pil",))
    a, b = preset(img, random.Random(5)), preset(img, random.Random(5))
    assert torch.equal(a, b) and a.shape == (3, 224, 224)
    assert not torch.equal(a, preset(img, random.Random(6)))
    val = TrainPreset(validation=True)
    assert torch.equal(val(img, random.Random(1)), val(img, random.Random(1)))


TRAIN_ARCH = "efficientnet_lite0_d11"  # the shipped compact architecture: fast on CPU
