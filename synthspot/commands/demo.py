"""Run the whole moderation loop on this machine, with no external services, on sample images.

What happens: the sample images shipped with synthspot are put in a local folder standing in for
an S3 bucket (s3://samples/...), one check per image is submitted to a file-system broker, a
real `synthspot worker` process fetches, decodes and scores them in batches, and the verdicts
are appended to a JSON-lines file and printed. Everything lives under STATE_DIR/demo.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

# settings that would point the demo at real services; the demo always runs embedded
_PRODUCTION_ENV = ("SYNTHSPOT_REDIS_URL", "SYNTHSPOT_BROKER_URL", "SYNTHSPOT_STORAGE", "SYNTHSPOT_STATE_DIR",
                   "SYNTHSPOT_LOCAL_BUCKET_DIR", "SYNTHSPOT_VERDICTS_FILE", "SYNTHSPOT_CONFIG",
                   "SYNTHSPOT_S3_ALLOWED_BUCKETS", "SYNTHSPOT_INTEGRATIONS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path,
                        help="image files to check instead of the shipped samples")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where the demo keeps its broker, bucket and verdicts (default: STATE_DIR/demo)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all verdicts")


def sample_images() -> list[Path]:
    folder = resources.files("synthspot") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.lower().endswith((".png", ".jpg", ".jpeg")))


def run(args: argparse.Namespace) -> int:
    from synthspot.worker.settings import Settings, default_state_dir
    from synthspot.worker.submit import make_check, send, wait_for_verdicts
    from synthspot.commands.verdicts import format_row

    state_dir = args.state_dir or (Path(os.environ.get("SYNTHSPOT_STATE_DIR") or default_state_dir()) / "demo")
    env = {k: v for k, v in os.environ.items() if k not in _PRODUCTION_ENV}
    env.update(SYNTHSPOT_STATE_DIR=str(state_dir), SYNTHSPOT_LOG_FORMAT=env.get("SYNTHSPOT_LOG_FORMAT", "text"),
               SYNTHSPOT_METRICS_PORT=env.get("SYNTHSPOT_METRICS_PORT", "0"))
    settings = Settings(state_dir=state_dir, metrics_port=0)

    images = args.images or sample_images()
    if not images:
        print("synthspot demo: no images given and no samples found", file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:8]
    checks = []
    for path in images:
        key = f"{run_id}/{path.name}"
        dest = settings.bucket_root / "samples" / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        checks.append(make_check(f"s3://samples/{key}", task_id=f"demo-{run_id}-{path.stem}",
                                 metadata={"file": path.name}))
    send(checks, settings=settings)
    print(f"submitted {len(checks)} checks; starting a worker (state in {state_dir})", file=sys.stderr)

    log_path = state_dir / "worker.log"
    with open(log_path, "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "synthspot", "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            start = time.monotonic()
            found = wait_for_verdicts([c.task_id for c in checks], settings=settings, timeout_s=args.timeout)
        finally:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
    print(f"{'time':<19}  {'label':<9}  {'score':>6}  task id  image")
    for check in checks:
        verdict = found.get(check.task_id)
        print(format_row(verdict) if verdict else f"{'':<19}  {'missing':<9}  {'-':>6}  {check.task_id}")
    print(f"\n{len(found)}/{len(checks)} verdicts in {time.monotonic() - start:.1f}s, stored in "
          f"{settings.verdicts_path} (see `SYNTHSPOT_STATE_DIR={state_dir} synthspot verdicts`); "
          f"worker log: {log_path}", file=sys.stderr)
    return 0 if len(found) == len(checks) else 1
