"""The default model's recipe runs end to end (simulated fakes, training, export) on a tiny data
folder of the shared data's layout, and its output is a weights file synthspot loads."""
from __future__ import annotations

import csv

import pytest

from helpers import photo

pytest.importorskip("skimage", reason="the recipe's public-domain photos come from scikit-image (test extra)")


def tiny_data(root):
    rows = []
    for group in ("bsd100", "urban100"):
        for i in range(8):
            f = f"real-photos/{group}/{i}.png"
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            photo(200, 180, seed=i + (group == "urban100") * 10).save(root / f)
            rows.append({"file": f, "path_in_repo": f})
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "path_in_repo"])
        w.writeheader()
        w.writerows(rows)
    gen_rows = []
    for fam in ("ldm", "vqgan-clip"):
        for i in range(8):
            f = f"generated/{fam}/{i}.png"
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            photo(256, 256, seed=100 + i).resize((128, 128)).resize((256, 256), 0).save(root / f)
            gen_rows.append({"file": f, "path_in_repo": f"renders/prompt{i}/{fam}.png"})
    with open(root / "generated" / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "path_in_repo"])
        w.writeheader()
        w.writerows(gen_rows)


def test_recipe_end_to_end(tmp_path, monkeypatch):
    import torch

    from synthspot.detector import Detector, default_model, fakes, train_sources

    monkeypatch.setattr(train_sources, "WALLPAPER_PHOTOS", [])  # only the tiny folder and scikit-image
    data = tmp_path / "data"
    tiny_data(data)
    fake_args = fakes.get_args_parser().parse_args(
        ["--data", str(data), "--out", str(tmp_path / "sim"), "--num-generators", "2", "--steps", "3",
         "--per-photo", "2", "--short-min", "96", "--short-max", "128", "--threads", "2"])
    rows = fakes.main(fake_args)
    assert rows and {r["split"] for r in rows} <= {"train", "val"}
    args = default_model.get_args_parser().parse_args(
        ["--data", str(data), "--simfakes", str(tmp_path / "sim"), "--out", str(tmp_path / "run"), "--epochs", "1",
         "--steps-per-epoch", "2", "--batch-size", "4", "--crop", "64", "--no-pretrained", "--threads", "2"])
    summary = default_model.main(args)
    assert summary["params"] == 700881 and 0 < summary["threshold"] < 1
    saved = torch.load(tmp_path / "run" / "weights.pth", weights_only=True)
    assert saved["synthspot"]["weights_cfg"]["arch"] == "efficientnet_lite0_d11"
    det = Detector.load(str(tmp_path / "run" / "weights.pth"), device="cpu")
    assert det.preset.crop_size == 64 and det.threshold == pytest.approx(summary["threshold"])
