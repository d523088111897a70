"""Start a scoring worker (the GPU role): consume image checks, score them in batches, store verdicts.

Configuration comes from SYNTHSPOT_* variables (docs/configuration.md). With none set, the
worker runs embedded: file-system broker, local folder buckets, verdicts in a JSON-lines file.
Stop it with SIGTERM (or Ctrl-C): running checks get SYNTHSPOT_SOFT_SHUTDOWN_TIMEOUT_S
seconds, then are requeued.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=None,
                        help="checks in flight (default: SYNTHSPOT_CONCURRENCY or 2 x batch size)")
    parser.add_argument("--hostname", default=None, help="Celery node name (default: synthspot@HOST)")


def run(args: argparse.Namespace) -> int:
    from synthspot.worker.app import create_app, install_worker_hooks
    from synthspot.worker.logs import setup_logging
    from synthspot.worker.settings import load_settings

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    install_worker_hooks(app)
    argv = ["worker", "--pool=threads", f"--concurrency={args.concurrency or settings.worker_concurrency}",
            f"--queues={settings.queue}", "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--loglevel={settings.log_level}"]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0
