"""Score image files, folders or globs and print one line (or one JSON object) per image.

Every input is reported, errors included; scoring goes on past a bad file. The exit status is
0 when every input was scored, 1 when at least one failed, 2 on a usage or weights error.

The score is the probability of being synthetic (sigmoid of the logit); the label is
`synthetic` at or above the threshold, else `real`.
"""
from __future__ import annotations

import argparse
import json
import sys

from .common import add_detector_arguments, expand_paths, load_detector


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table",
                        help="a table for people, or one JSON object per image (default: %(default)s)")
    parser.add_argument("--all-files", action="store_true",
                        help="in folders, score every file, not only image suffixes")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: up to 4)")
    add_detector_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    paths = list(expand_paths(args.paths, args.all_files))
    det = load_detector(args)
    out = sys.stdout
    failed = flagged = 0
    bar = tqdm(total=len(paths), unit="img", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
    if args.format == "table":
        out.write(f"{'score':>7}  {'label':<9}  path\n")
    try:
        for result in det.score_sources(paths, workers=args.workers):
            bar.update(1)
            if result.error:
                failed += 1
            elif result.label == "synthetic":
                flagged += 1
            if args.format == "jsonl":
                out.write(json.dumps(result.as_dict()) + "\n")
            elif result.error:
                out.write(f"{'-':>7}  {'error':<9}  {result.source}  [{result.error.reason}] {result.error}\n")
            else:
                out.write(f"{result.score:7.4f}  {result.label:<9}  {result.source}\n")
            out.flush()
    finally:
        bar.close()
    scored = len(paths) - failed
    print(f"{scored} scored ({flagged} synthetic at threshold {det.threshold:g}), {failed} failed; "
          f"weights {det.name}", file=sys.stderr)
    return 1 if failed else 0
