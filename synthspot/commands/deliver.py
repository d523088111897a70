"""Start a deliverer (the CPU "notify" role): send stored verdicts to webhooks, Slack and plugins.

Reads the Redis outbox that scoring workers fill (SYNTHSPOT_REDIS_URL), delivers each verdict to
its routed integrations (SYNTHSPOT_INTEGRATIONS) with retries on SYNTHSPOT_RETRY_SCHEDULE_S, and
moves deliveries that never succeed to the dead-letter store (see `synthspot dlq`). Run as many
as you like: each delivery is leased to one deliverer at a time. Stop with SIGTERM (or Ctrl-C):
attempts in flight finish first. Metrics on SYNTHSPOT_DELIVER_METRICS_PORT (0: off).
See docs/webhooks.md.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=None,
                        help="deliveries in flight (default: SYNTHSPOT_DELIVERY_CONCURRENCY)")


def run(args: argparse.Namespace) -> int:
    import signal
    import sys

    from synthspot.worker.deliver import Deliverer
    from synthspot.worker.httpd import serve
    from synthspot.worker.logs import setup_logging
    from synthspot.worker.settings import load_settings

    overrides = {"delivery_concurrency": args.concurrency} if args.concurrency else {}
    settings = load_settings(**overrides)  # a SettingsError names fields, never values (secrets)
    setup_logging(settings.log_level, settings.log_format)
    try:
        deliverer = Deliverer(settings)
    except (ValueError, TypeError, ImportError, RuntimeError) as exc:  # a bad integration, named
        print(f"synthspot deliver: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: deliverer.stop())
    server = serve(settings.metrics_host, settings.deliver_metrics_port, deliverer.ready) \
        if settings.deliver_metrics_port else None
    try:
        deliverer.run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0
