"""Evaluate a detector with the paper's protocol: per-generator AP and accuracies, the mean, the
fake recall at 1 % and 5 % false positives on real photos, a CSV like the reference eval.py, a
Markdown table and a precision-recall plot."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synthspot.detector.evaluate import get_args_parser

    for action in get_args_parser(add_help=False)._actions:
        parser._add_action(action)


def run(args: argparse.Namespace) -> int:
    from synthspot.detector.evaluate import main

    main(args)
    return 0
