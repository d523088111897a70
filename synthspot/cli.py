"""The ``synthspot`` command line.

Each subcommand lives in ``synthspot.commands.<name>`` with ``add_arguments(parser)`` and
``run(args) -> int`` and is imported only when used, so ``synthspot --help`` answers without
loading torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (command, module, one-line help). The order is the order of `synthspot --help`.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "demo", "run the whole loop on sample images, with no external services"),
    ("score", "score", "score image files, folders or globs with a detector"),
    ("weights", "weights", "list, fetch and verify named detector weights"),
    ("eval", "eval", "evaluate a detector on test sets with the paper's protocol"),
    ("train", "train", "train a detector with the paper's recipe"),
    ("worker", "worker", "start a scoring worker (Celery, batched inference)"),
    ("submit", "submit", "submit s3://bucket/key image checks to the queue"),
    ("verdicts", "verdicts", "show recent verdicts, or those of given task ids"),
    ("deliver", "deliver", "start a deliverer: send stored verdicts to webhooks, Slack and plugins"),
    ("dlq", "dlq", "list and replay deliveries in the dead-letter store"),
    ("schema", "schema", "print the JSON Schema of checks or verdicts"),
    ("health", "health", "check a running worker or deliverer via /readyz or /livez (exit 0/1)"),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand gets its options (and its module imported),
    so that a light command such as ``health`` or ``dlq`` never imports torch."""
    parser = argparse.ArgumentParser(
        prog="synthspot",
        description="Spot CNN-generated images (GAN, diffusion, deepfake, super-resolution output). "
                    "Run `synthspot COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        mod = importlib.import_module(f"synthspot.commands.{module}")
        cmd = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.set_defaults(_module=mod)
        mod.add_arguments(cmd)
    return parser


def _command_in(argv: list[str]) -> str | None:
    names = {name for name, _, _ in COMMANDS}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--log-level":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in names else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser(only=command or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from synthspot.detector.errors import SynthspotError

    try:
        return int(args._module.run(args) or 0)
    except SynthspotError as exc:
        print(f"synthspot {args.command}: error [{exc.reason}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
