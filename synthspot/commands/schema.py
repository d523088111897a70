"""Print the JSON Schema of a check (what platforms send) or of a verdict (what they receive)."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", choices=("check", "verdict"), help="which document")


def run(args: argparse.Namespace) -> int:
    from synthspot.worker.contract import schemas

    print(json.dumps(schemas()[f"{args.which}-v1.json"], indent=2, sort_keys=True))
    return 0
