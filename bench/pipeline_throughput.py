#!/usr/bin/env python3
"""Pipeline throughput: the same images through the whole queue and through the detector alone.

Path 1, ``pipeline``: images uploaded with boto3 to a real S3-compatible server (nanio), checks
submitted to real Redis, one ``synthspot worker`` process fetching, decoding, batching and
scoring them, verdicts stored in Redis. Timed from the first submission to the last verdict,
after the worker reported ready and scored a warm-up batch.

Path 2, ``detector``: ``Detector.score_sources`` on the same image files in this process, at
the same batch size, after the worker has stopped (the two paths never share the CPU).

Prints images/s of each, their ratio (target >= 0.9), and the p50/p99 submit-to-verdict latency
of the pipeline. The last line is one JSON object.

    python bench/pipeline_throughput.py --images 64 --batch-size 16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real-service runners shared with the test suite

from helpers import encode, free_port, photo  # noqa: E402
from services import RedisServer, S3Server, WorkerProcess, metric_value  # noqa: E402


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=64, help="number of images (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: %(default)s)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default: %(default)s)")
    p.add_argument("--weights", default=None, help="weights (default: a random ResNet-50 written to a temp file)")
    p.add_argument("--device", default="auto")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="extra worker setting, e.g. --set SYNTHSPOT_CONCURRENCY=24 (repeatable)")
    return p


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def batch_sizes(worker: WorkerProcess) -> tuple[float, float]:
    """(images, forward passes) so far, from the worker's ``synthspot_batch_size`` histogram."""
    text = worker.metrics()
    return metric_value(text, "synthspot_batch_size_sum"), metric_value(text, "synthspot_batch_size_count")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main(args: argparse.Namespace) -> dict:
    import torch

    from synthspot.detector import Detector
    from synthspot.detector.models import create_model
    from synthspot.worker.app import create_app
    from synthspot.worker.settings import Settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        weights = args.weights
        if weights is None:
            weights = str(tmp / "resnet50-random.pth")
            torch.manual_seed(0)
            torch.save(create_model("resnet50").state_dict(), weights)
        files = []
        for i in range(args.images):
            path = tmp / "images" / f"{i:05d}.jpg"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(encode(photo(args.size, args.size, seed=i), "JPEG", quality=92))
            files.append(path)

        redis = RedisServer(tmp / "redis").start()
        s3 = S3Server(tmp / "s3").start()
        worker = None
        try:
            client = s3.client()
            client.create_bucket(Bucket="bench")
            for path in files:
                client.put_object(Bucket="bench", Key=path.name, Body=path.read_bytes())
            env = {"SYNTHSPOT_REDIS_URL": redis.url, **s3.env(), "SYNTHSPOT_WEIGHTS": weights,
                   "SYNTHSPOT_BATCH_SIZE": str(args.batch_size), "SYNTHSPOT_BATCH_WAIT_MS": "50",
                   "SYNTHSPOT_METRICS_PORT": str(free_port()), "SYNTHSPOT_STATE_DIR": str(tmp / "state"),
                   "SYNTHSPOT_DEVICE": args.device, "SYNTHSPOT_LOG_LEVEL": "WARNING"}
            env.update(item.split("=", 1) for item in args.set)
            settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items()})
            app = create_app(settings)
            worker = WorkerProcess(env, tmp / "worker.log").start()
            worker.wait_ready(timeout=600)
            warm = [make_check(f"s3://bench/{p.name}", task_id=f"warm-{i}")
                    for i, p in enumerate(files[: args.batch_size])]
            send(warm, app=app)
            wait_for_verdicts([c.task_id for c in warm], settings=settings, timeout_s=args.timeout)

            checks = [make_check(f"s3://bench/{p.name}", task_id=f"run-{i}") for i, p in enumerate(files)]
            procs = {"worker": worker.proc.pid, "s3_server": s3.proc.pid, "redis": redis.proc.pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in procs.items()}
            before = batch_sizes(worker)
            start = time.perf_counter()
            send(checks, app=app)
            verdicts = wait_for_verdicts([c.task_id for c in checks], settings=settings, timeout_s=args.timeout,
                                         poll_s=0.05)
            wall = time.perf_counter() - start
            cpu_used = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in procs.items()}
            if len(verdicts) != len(checks):
                raise SystemExit(f"only {len(verdicts)} of {len(checks)} verdicts; log: {worker.log()[-2000:]}")
            bad = [v for v in verdicts.values() if v.status != "scored"]
            if bad:
                raise SystemExit(f"{len(bad)} checks failed: {bad[0].error}")
            latencies = [(v.created_at - v.submitted_at).total_seconds() for v in verdicts.values()]
            stages = {k: round(statistics.mean(v.timings.get(k, 0.0) for v in verdicts.values()), 3)
                      for k in ("queue_wait", "fetch", "decode", "inference")}
            after = batch_sizes(worker)
            batches = (after[0] - before[0], after[1] - before[1])
        finally:
            if worker:
                worker.stop()
            s3.stop()
            redis.stop()

        det = Detector.load(weights, device=args.device, batch_size=max(64, args.batch_size))
        warm_views = [det.load_and_prepare(str(p)) for p in files[: args.batch_size]]
        det.score_views(warm_views)
        # the detector alone, batched at the same size: one score_sources call per batch of images
        start = time.perf_counter()
        scored = 0
        for i in range(0, len(files), args.batch_size):
            det.batch_size = args.batch_size
            scored += sum(1 for r in det.score_sources([str(p) for p in files[i:i + args.batch_size]])
                          if r.error is None)
        detector_wall = time.perf_counter() - start
        assert scored == len(files)

    pipeline_img_s = len(files) / wall
    detector_img_s = len(files) / detector_wall
    figures = {
        "images": len(files), "batch_size": args.batch_size, "size": args.size, "device": str(det.device),
        "pipeline_img_s": round(pipeline_img_s, 3), "detector_img_s": round(detector_img_s, 3),
        "ratio": round(pipeline_img_s / detector_img_s, 3),
        "p50_s": round(statistics.median(latencies), 3), "p99_s": round(percentile(latencies, 0.99), 3),
        "mean_batch_size": round(batches[0] / batches[1], 2) if batches[1] else None, "mean_stage_s": stages, "cpu_s": cpu_used, "cpu_ms_per_image": {k: round(1000 * v / len(files), 1) for k, v in cpu_used.items()},
    }
    print(f"pipeline {pipeline_img_s:.2f} img/s, detector alone {detector_img_s:.2f} img/s, "
          f"ratio {figures['ratio']:.2f}; submit-to-verdict p50 {figures['p50_s']}s p99 {figures['p99_s']}s",
          file=sys.stderr)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(get_args_parser().parse_args())
