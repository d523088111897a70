"""Options and helpers shared by the commands that load a detector."""
from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def crop_choice(value: str) -> str | int:
    """``tiles`` | ``none`` | a positive integer (one centre crop of that size)."""
    if value in ("tiles", "none"):
        return value
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'tiles', 'none' or a crop size, got {value!r}") from None
    if size < 8:
        raise argparse.ArgumentTypeError("crop size must be at least 8")
    return size


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("detector")
    g.add_argument("--weights", default=None,
                   help="registered name (see `synthspot weights list`), path, file://, https:// or s3:// "
                        "location (default: the weights shipped with synthspot). The paper's published "
                        "weights are CC BY-NC-SA 4.0: non-commercial use only.")
    g.add_argument("--crop", type=crop_choice, default="tiles",
                   help="'tiles' (default): average native-resolution tiles, never resizing the image; "
                        "N (e.g. 224): one centre crop, the reference eval.py way; "
                        "'none': the whole image in one pass, the reference demo.py way")
    g.add_argument("--max-grid", type=int, default=None, help="tiles per side at most (default from the weights: 4)")
    g.add_argument("--no-upsize-small", action="store_true",
                   help="keep the reference behaviour for images smaller than the crop (zero padding / as is) "
                        "instead of upsizing them to 256 as the paper's maintainers advise")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    g.add_argument("--batch-size", type=int, default=32, help="views per forward pass (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=None,
                   help="score at or above which an image is labelled synthetic (default: the weights' own)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the model (faster after a one-time compile of tens of seconds; "
                        "needs a C++ compiler on CPU)")
    g.add_argument("--cache-dir", type=Path, default=None, help="weights cache (default: ~/.cache/synthspot)")
    g.add_argument("--mirror", default=os.environ.get("SYNTHSPOT_WEIGHTS_MIRROR"),
                   help="base URL that replaces the official download host for named weights "
                        "(env SYNTHSPOT_WEIGHTS_MIRROR)")


def preset_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.crop == "none":
        overrides["policy"] = "full"
    elif isinstance(args.crop, int):
        overrides.update(policy="center", crop_size=args.crop)
    else:
        overrides["policy"] = "tiles"
    if args.max_grid is not None:
        overrides["max_grid"] = args.max_grid
    if args.no_upsize_small:
        overrides["upsize_small_to"] = None
    return overrides


def load_detector(args: argparse.Namespace):  # -> Detector
    from synthspot.detector import Detector
    from synthspot.detector.weights import NON_COMMERCIAL_NOTICE

    det = Detector.load(args.weights, device=args.device, cache_dir=args.cache_dir, mirror=args.mirror,
                        preset_overrides=preset_overrides(args), batch_size=args.batch_size,
                        threshold=args.threshold, progress=sys.stderr.isatty(), compile=args.compile)
    if det.cfg.non_commercial:
        print(f"note: {det.name}: {NON_COMMERCIAL_NOTICE}", file=sys.stderr)
    return det


def expand_paths(items: list[str], all_files: bool = False) -> Iterator[str]:
    """Files as given, folders recursively (image suffixes only unless ``all_files``), globs expanded.

    A path that matches nothing is yielded as is, so that it is reported as an error.
    """
    for item in items:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith(".") and (
                        all_files or child.suffix.lower() in IMAGE_SUFFIXES):
                    yield str(child)
        elif path.exists():
            yield item
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                yield item
            for match in matches:
                if Path(match).is_dir():
                    yield from expand_paths([match], all_files)
                else:
                    yield match
        else:
            yield item


def script_command(module: str) -> tuple:
    """``add_arguments`` and ``run`` for a command that is a torchvision-style script of
    ``synthspot.detector`` (``get_args_parser(add_help)`` and ``main(args)``): the CLI and
    ``python -m synthspot.detector.<module>`` then share one parser."""
    import importlib

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        script = importlib.import_module(f"synthspot.detector.{module}")
        for action in script.get_args_parser(add_help=False)._actions:
            parser._add_action(action)

    def run(args: argparse.Namespace) -> int:
        importlib.import_module(f"synthspot.detector.{module}").main(args)
        return 0

    return add_arguments, run
