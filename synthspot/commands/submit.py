"""Submit image checks (s3://bucket/key references) to the scoring queue.

Each check gets a task id (yours with --task-id, else a random one); the verdict is stored
under it, so submitting the same task id twice yields one verdict. With --wait, the command
waits for the verdicts and prints them.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="S3_URL", help="s3://bucket/key of each image")
    parser.add_argument("--task-id", action="append", default=None,
                        help="task id of each image, in order (default: random)")
    parser.add_argument("--version-id", default=None, help="S3 version id (one image only)")
    parser.add_argument("--integration", action="append", default=None, dest="integrations",
                        help="integration to receive the verdict (repeatable; default: routing decides)")
    parser.add_argument("--metadata", type=json.loads, default=None, help="JSON object echoed in the verdict")
    parser.add_argument("--wait", action="store_true", help="wait for the verdicts and print them")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait with --wait")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from synthspot.worker.contract import explain
    from synthspot.worker.settings import load_settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    if args.task_id and len(args.task_id) != len(args.images):
        print("synthspot submit: give one --task-id per image", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        checks = [make_check(image, task_id=args.task_id[i] if args.task_id else None,
                             version_id=args.version_id, integrations=args.integrations, metadata=args.metadata)
                  for i, image in enumerate(args.images)]
    except ValidationError as exc:
        print(f"synthspot submit: invalid check: {explain(exc)}", file=sys.stderr)
        return 2
    send(checks, settings=settings)
    for check in checks:
        print(f"submitted {check.task_id}  {check.image.url}", file=sys.stderr)
    if not args.wait:
        for check in checks:
            print(check.task_id)
        return 0
    found = wait_for_verdicts([c.task_id for c in checks], settings=settings, timeout_s=args.timeout)
    for check in checks:
        verdict = found.get(check.task_id)
        print(verdict.to_json() if verdict else json.dumps({"task_id": check.task_id, "verdict": None}))
    return 0 if len(found) == len(checks) else 1
