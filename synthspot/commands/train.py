"""Train a detector with the paper's recipe (blur + JPEG augmentation, Adam 1e-4, lr / 10 on a
validation plateau down to 1e-6, best epoch kept, resumable, seeded) on
<root>/{train,val}/[<class>/]{0_real,1_fake}. See docs/training.md."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synthspot.detector.train import get_args_parser

    for action in get_args_parser(add_help=False)._actions:
        parser._add_action(action)


def run(args: argparse.Namespace) -> int:
    from synthspot.detector.train import main

    main(args)
    return 0
