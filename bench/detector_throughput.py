#!/usr/bin/env python3
"""Detector throughput: the batched, overlapped path against the reference demo.py loop.

Both paths score the same image files in the same process with the same loaded ResNet-50:

* ``loop``: the reference way, one image per forward pass (PIL open, convert RGB, centre crop,
  ToTensor, Normalize, ``model(x.unsqueeze(0))``), weights loaded once, default NCHW layout;
  the same loop in channels-last layout is reported too, to separate the layout's share of the
  gain from batching's;
* ``batched``: ``Detector.score_sources`` (decoding in threads, ``--batch-size`` views per pass).

The machine's float32 GEMM rate is measured in the same run; ResNet-50 at 224x224 costs 8.2
GFLOP per image, so the GEMM-bound rate is ``gemm_gflops / 8.2`` images/s, and
``gemm_fraction`` is the batched rate over that bound. The last line is one JSON object.

    python bench/detector_throughput.py --images 64 --batch-size 32
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from synthspot.detector import Detector
from synthspot.detector.infer import load_model
from synthspot.detector.models import create_model
from synthspot.detector.weights import WeightsCfg, resolve

RESNET50_GFLOP_224 = 8.2


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=64, help="number of images (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="views per forward pass (default: %(default)s)")
    p.add_argument("--size", type=int, default=224, help="image side; 224 makes one view per image")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default=None, help="weights to load (default: randomly initialised ResNet-50; "
                                                   "speed does not depend on the values)")
    p.add_argument("--workers", type=int, default=None, help="decoding threads of the batched path")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=2, help="forward passes before timing")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    return p


def gemm_gflops(device: torch.device, n: int = 2048, seconds: float = 3.0) -> float:
    """Sustained float32 matrix-multiply rate of this device, in GFLOP/s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    sync()
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def make_images(folder: Path, count: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        path = folder / f"img{i:05d}.png"
        Image.fromarray(arr).save(path, compress_level=1)
        paths.append(str(path))
    return paths


def reference_loop(model: torch.nn.Module, paths: list[str], device: torch.device,
                   channels_last: bool = False) -> float:
    """demo.py: one image per forward pass (NCHW unless ``channels_last``). Returns images/s."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(device, memory_format=fmt).eval()
    trans = T.Compose([T.CenterCrop(224), T.ToTensor(),
                       T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    start = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            img = trans(Image.open(path).convert("RGB"))
            model(img.unsqueeze(0).to(device).contiguous(memory_format=fmt)).sigmoid().item()
    return len(paths) / (time.perf_counter() - start)


def main(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        cfg, raw, _ = load_model(resolve(args.weights))
    else:
        cfg = WeightsCfg(name="resnet50.random", arch="resnet50")
        raw = create_model("resnet50").eval()
    # the Detector folds batch norms into a copy; the reference loop keeps the plain model, as demo.py
    det = Detector(raw, WeightsCfg(**{**cfg.as_dict(), "policy": "center", "crop_size": 224}), device=args.device,
                   batch_size=args.batch_size)
    device = det.device
    gflops = gemm_gflops(device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"float32 GEMM {gflops:.1f} GFLOP/s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.images, args.size)
        warm = [det.prepare(Image.open(p).convert("RGB")) for p in paths[: args.batch_size]]
        for _ in range(args.warmup):
            det.score_views(warm)
        start = time.perf_counter()
        results = list(det.score_sources(paths, workers=args.workers))
        batched = len(paths) / (time.perf_counter() - start)
        assert all(r.error is None for r in results)
        compiled = None
        if not args.no_compile:  # the same path with the model compiled (compile time not counted)
            cdet = Detector(raw, det.cfg, device=args.device, batch_size=args.batch_size, compile=True)
            cdet.score_views(warm)
            start = time.perf_counter()
            assert all(r.error is None for r in cdet.score_sources(paths, workers=args.workers))
            compiled = len(paths) / (time.perf_counter() - start)
        loop = reference_loop(raw, paths, device)
        loop_cl = reference_loop(raw, paths, device, channels_last=True)

    bound = gflops / RESNET50_GFLOP_224
    figures = {
        "device": str(device), "images": args.images, "batch_size": args.batch_size,
        "batched_img_s": round(batched, 3), "loop_img_s": round(loop, 3), "ratio": round(batched / loop, 3),
        "loop_channels_last_img_s": round(loop_cl, 3), "ratio_vs_channels_last_loop": round(batched / loop_cl, 3),
        "gemm_gflops": round(gflops, 1), "gemm_bound_img_s": round(bound, 3),
        "gemm_fraction": round(batched / bound, 3),
        "compiled_img_s": round(compiled, 3) if compiled else None,
        "compiled_gemm_fraction": round(compiled / bound, 3) if compiled else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if device.type == "cuda":
        figures["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(f"batched {batched:.2f} img/s, loop {loop:.2f} img/s, ratio {batched / loop:.2f}; "
          f"GEMM bound {bound:.2f} img/s, fraction {batched / bound:.2f}", file=sys.stderr)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(get_args_parser().parse_args())
