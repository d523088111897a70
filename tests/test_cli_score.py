"""`synthspot score` on a folder of mixed good and broken images, and `synthspot --help`."""
from __future__ import annotations

import json
import subprocess

from conftest import synthspot_cmd
from helpers import encode, photo, run_on_terminal


def test_score_folder_of_good_and_broken_images(tmp_path, parity_checkpoint):
    folder = tmp_path / "uploads"
    (folder / "sub").mkdir(parents=True)
    photo(300, 200, seed=1).save(folder / "good.png")
    photo(256, 256, seed=2).save(folder / "sub" / "good.jpg", quality=85)
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(encode(photo(), "JPEG")[:400])
    (folder / "page.png").write_bytes(b"<html><body>not an image</body></html>")
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    proc = subprocess.run(synthspot_cmd("score", str(folder), str(tmp_path / "missing.png"), "--weights",
                                        str(parity_checkpoint), "--format", "jsonl", "--batch-size", "4"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # something failed, everything was reported
    rows = {r["path"].split("/")[-1]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == {"good.png", "good.jpg", "empty.png", "truncated.jpg", "page.png", "missing.png"}
    for name in ("good.png", "good.jpg"):
        assert rows[name]["error"] is None and 0 < rows[name]["score"] < 1
        assert rows[name]["label"] in ("real", "synthetic")
    assert rows["empty.png"]["error"]["reason"] == "empty"
    assert rows["truncated.jpg"]["error"]["reason"] in ("truncated", "corrupt")
    assert rows["page.png"]["error"]["reason"] == "not_an_image"
    assert rows["missing.png"]["error"]["reason"] == "not_found"
    assert "2 failed" not in proc.stderr and "4 failed" in proc.stderr


def test_score_all_good_exits_zero_and_table_format(tmp_path, parity_checkpoint):
    photo(256, 256).save(tmp_path / "a.png")
    proc = subprocess.run(synthspot_cmd("score", str(tmp_path / "*.png"), "--weights", str(parity_checkpoint),
                                        "--threshold", "0.0"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["score", "label", "path"]
    assert lines[1].split()[1] == "synthetic"  # threshold 0 flags everything


def test_progress_bar_on_a_terminal_only(tmp_path, parity_checkpoint):
    for i in range(3):
        photo(256, 256, seed=i).save(tmp_path / f"{i}.png")
    cmd = synthspot_cmd("score", str(tmp_path), "--weights", str(parity_checkpoint), "--format", "jsonl")
    status, stdout, terminal = run_on_terminal(cmd)
    assert status == 0, terminal
    assert "/3 [" in terminal and "img/s" in terminal  # tqdm's bar over the 3 images, on stderr
    assert len([json.loads(line) for line in stdout.splitlines()]) == 3  # stdout stays machine-readable
    piped = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and "img/s" not in piped.stderr


def test_help_explains_every_command():
    from synthspot.cli import COMMANDS

    proc = subprocess.run(synthspot_cmd("--help"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for name, _, _ in COMMANDS:
        assert name in proc.stdout
        sub = subprocess.run(synthspot_cmd(name, "--help"), capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "usage: synthspot " + name in sub.stdout
