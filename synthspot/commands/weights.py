"""List, inspect, fetch and verify detector weights.

Named weights resolve strictly (`arch.tag`, or the paper's file names as aliases). A fetched
file's sha256 is recorded beside it in the cache and checked on every later load.

Licence: the paper's published weights (resnet50.cnndetection_*) are CC BY-NC-SA 4.0,
non-commercial use only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="registered weights, their licence and whether they are cached")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter (default: all)")
    p = sub.add_parser("info", help="the full registry entry of one weights name, as JSON")
    p.add_argument("name")
    for action, help_text in (("fetch", "download named weights into the cache, recording their sha256"),
                              ("verify", "check a cached or shipped weights file against its sha256")):
        p = sub.add_parser(action, help=help_text)
        p.add_argument("name")
        p.add_argument("--cache-dir", type=Path, default=None)
        if action == "fetch":
            p.add_argument("--mirror", default=os.environ.get("SYNTHSPOT_WEIGHTS_MIRROR"),
                           help="base URL replacing the official host (env SYNTHSPOT_WEIGHTS_MIRROR)")
            p.add_argument("--force", action="store_true", help="download again even when cached")
    for p in sub.choices.values():
        p.set_defaults(cache_dir=getattr(p, "cache_dir", None))


def run(args: argparse.Namespace) -> int:
    from synthspot.detector import weights as W

    if args.action == "list":
        print(f"{'name':<30} {'arch':<14} {'licence':<18} {'threshold':>9}  where")
        for cfg in W.list_weights(args.pattern):
            if cfg.file:
                where = "shipped"
            else:
                where = "cached" if W.cached_path(cfg, getattr(args, "cache_dir", None)).is_file() else "not fetched"
            aliases = f" (alias {', '.join(cfg.aliases)})" if cfg.aliases else ""
            print(f"{cfg.name:<30} {cfg.arch:<14} {cfg.license:<18} {cfg.threshold:>9g}  {where}{aliases}")
        if any(cfg.non_commercial for cfg in W.list_weights(args.pattern)):
            print(f"\n{W.NON_COMMERCIAL_NOTICE}", file=sys.stderr)
        return 0
    if args.action == "info":
        print(json.dumps(W.get_weights_cfg(args.name).as_dict(), indent=2))
        return 0
    cfg = W.get_weights_cfg(args.name)
    if args.action == "fetch":
        if cfg.non_commercial:
            print(f"note: {cfg.name}: {W.NON_COMMERCIAL_NOTICE}", file=sys.stderr)
        resolved = W.fetch(args.name, cache_dir=args.cache_dir, mirror=args.mirror, force=args.force,
                           progress=sys.stderr.isatty())
    else:
        resolved = W.resolve(args.name, cache_dir=args.cache_dir, download_missing=False)
    digest = W.verify(resolved)
    print(f"{resolved.cfg.name}  {resolved.path}  sha256 {digest}")
    return 0
