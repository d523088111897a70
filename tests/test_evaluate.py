"""The evaluation protocol: AP as sklearn computes it, FPR operating points, layout discovery, reports."""
from __future__ import annotations

import csv
import random
import subprocess

import pytest
from sklearn.metrics import average_precision_score

from conftest import synthspot_cmd
from helpers import photo
from synthspot.detector.evaluate import average_precision, find_test_sets, recall_at_fpr


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn(seed):
    rng = random.Random(seed)
    labels = [rng.randint(0, 1) for _ in range(200)]
    scores = [round(rng.random(), 2) for _ in range(200)]  # many ties
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_recall_at_fpr():
    reals = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    fakes = [0.5, 0.96, 0.985, 0.995, 1.0]
    recall, threshold = recall_at_fpr(reals, fakes, 0.01)
    assert threshold == 0.98 and recall == 0.6  # one real (0.99) above: FPR 1 %
    recall, threshold = recall_at_fpr(reals, fakes, 0.05)
    assert threshold == 0.94 and recall == 0.8
    assert sum(r > threshold for r in reals) / len(reals) <= 0.05


def make_layout(root, with_classes: bool):
    for gen in ("gana", "ganb"):
        for cls in (["cats", "dogs"] if with_classes else [""]):
            for label, seed in (("0_real", 0), ("1_fake", 100)):
                folder = root / gen / cls / label
                folder.mkdir(parents=True)
                for i in range(3):
                    photo(240, 240, seed=seed + i + hash(gen + cls) % 50).save(folder / f"{i}.png")


def test_layout_discovery(tmp_path):
    make_layout(tmp_path / "flat", with_classes=False)
    make_layout(tmp_path / "classes", with_classes=True)
    flat = find_test_sets(tmp_path / "flat")
    assert sorted(flat) == ["gana", "ganb"] and len(flat["gana"]["real"]) == 3
    classes = find_test_sets(tmp_path / "classes")
    assert len(classes["ganb"]["fake"]) == 6  # both class subfolders merged
    assert list(find_test_sets(tmp_path / "flat" / "gana")) == ["gana"]
    with pytest.raises(ValueError):
        find_test_sets(tmp_path / "flat" / "gana" / "0_real")


def test_eval_command_writes_reports(tmp_path, parity_checkpoint):
    make_layout(tmp_path / "sets", with_classes=True)
    out = tmp_path / "out"
    proc = subprocess.run(synthspot_cmd("eval", str(tmp_path / "sets"), "--weights", str(parity_checkpoint),
                                        "--out", str(out), "--crop", "224"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| mean |" in proc.stdout
    with open(out / "eval.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["testset", "accuracy", "avg precision"] and [r[0] for r in rows[1:]] == ["gana", "ganb", "mean"]
    scores = list(csv.DictReader(open(out / "scores.csv")))
    assert len(scores) == 2 * 12
    from PIL import Image

    assert Image.open(out / "pr.png").size[0] > 500
