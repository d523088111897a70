"""Show recent verdicts (or the verdict of given task ids) from the verdict store."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="show these verdicts (default: recent ones)")
    parser.add_argument("--limit", type=int, default=20, help="how many recent verdicts (default: %(default)s)")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")


def format_row(v) -> str:  # v: Verdict
    score = f"{v.score:.4f}" if v.score is not None else "-"
    image = v.image.url if v.image else "-"
    detail = f"[{v.error.reason}] {v.error.message}" if v.error else ""
    return f"{v.created_at:%Y-%m-%d %H:%M:%S}  {v.label:<9}  {score:>6}  {v.task_id}  {image}  {detail}".rstrip()


def run(args: argparse.Namespace) -> int:
    from synthspot.worker.runtime import runtime_for
    from synthspot.worker.settings import load_settings

    store = runtime_for(load_settings()).verdict_store
    if args.task_ids:
        verdicts = [store.get(t) for t in args.task_ids]
        missing = [t for t, v in zip(args.task_ids, verdicts) if v is None]
        verdicts = [v for v in verdicts if v is not None]
    else:
        verdicts, missing = store.recent(args.limit), []
    for v in verdicts:
        print(v.to_json() if args.format == "jsonl" else format_row(v))
    for t in missing:
        print(f"no verdict for {t}")
    return 1 if missing else 0
