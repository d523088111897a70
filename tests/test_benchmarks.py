"""The benchmarks in bench/ run end to end and end with one JSON line carrying the keys their issues name.

They are not timed here (speed targets are read from the benchmarks' own runs, bench/README.md);
this only keeps them working: a benchmark that crashes or drops a figure fails the suite.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, timeout: float = 600) -> dict:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)


def test_detector_throughput_prints_its_figures():
    figures = run_bench("detector_throughput.py", "--images", "6", "--batch-size", "3", "--warmup", "1",
                        "--no-compile")
    for key in ("batched_img_s", "loop_img_s", "ratio", "gemm_gflops", "gemm_fraction", "peak_rss_mb"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, (key, figures)
    assert abs(figures["ratio"] - figures["batched_img_s"] / figures["loop_img_s"]) < 0.01
    # ResNet-50 at 224² is 8.2 GFLOP per image: the fraction is the batched rate over the GEMM bound
    bound = figures["gemm_gflops"] / 8.2
    assert abs(figures["gemm_fraction"] - figures["batched_img_s"] / bound) < 0.01


def test_pipeline_throughput_prints_its_figures():
    figures = run_bench("pipeline_throughput.py", "--images", "8", "--batch-size", "4")
    assert figures["images"] == 8
    for key in ("pipeline_img_s", "detector_img_s", "ratio", "p50_s", "p99_s"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, (key, figures)
    assert abs(figures["ratio"] - figures["pipeline_img_s"] / figures["detector_img_s"]) < 0.01
    assert figures["p50_s"] <= figures["p99_s"]
    assert 1 <= figures["mean_batch_size"] <= 4
