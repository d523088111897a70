"""Inspect and replay the dead-letter store: deliveries that failed on every scheduled attempt,
hit an endpoint that answered 410 Gone, or whose integration was disabled or removed.

  synthspot dlq list [--integration NAME] [--format table|jsonl]
  synthspot dlq replay ID [ID ...]        (ids as `dlq list` prints them: INTEGRATION/TASK_ID)
  synthspot dlq replay --all [--integration NAME]
  synthspot dlq enable NAME               (re-enable an integration disabled by a 410, replaying nothing)

Replayed deliveries are due at once with a fresh retry schedule, and replay re-enables their
integrations. Receivers see the same webhook-id again and deduplicate on it. Needs Redis
(SYNTHSPOT_REDIS_URL).
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthspot.worker.outbox import Outbox


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show dead letters, newest first, and disabled integrations")
    ls.add_argument("--integration", default=None, help="only this integration's")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    ls.add_argument("--format", choices=("table", "jsonl"), default="table")
    rp = sub.add_parser("replay", help="move dead letters back to the outbox, due now")
    rp.add_argument("ids", nargs="*", metavar="ID", help="delivery ids (INTEGRATION/TASK_ID)")
    rp.add_argument("--all", action="store_true", help="every dead letter (of --integration, if given)")
    rp.add_argument("--integration", default=None, help="with --all: only this integration's")
    en = sub.add_parser("enable", help="re-enable an integration disabled by a 410 answer")
    en.add_argument("name", help="integration name")


def _when(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def run(args: argparse.Namespace) -> int:
    import sys

    from redis.exceptions import ConnectionError as RedisConnectionError

    from synthspot.integrations.http import redact_url
    from synthspot.worker.outbox import Outbox, connect
    from synthspot.worker.settings import load_settings

    settings = load_settings()  # a SettingsError names fields, never values (secrets)
    if settings.redis_url is None:
        print("synthspot dlq: no dead-letter store in embedded mode (set SYNTHSPOT_REDIS_URL)", file=sys.stderr)
        return 2
    ca = str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None
    url = settings.redis_url.get_secret_value()
    outbox = Outbox(connect(url, ca, retries=3), schedule=settings.retry_schedule_s,
                    lease_s=settings.delivery_lease_s)
    try:
        return _act(args, outbox)
    except RedisConnectionError:
        print(f"synthspot dlq: cannot reach Redis at {redact_url(url)}", file=sys.stderr)
        return 2


def _act(args: argparse.Namespace, outbox: "Outbox") -> int:
    import dataclasses
    import json
    import sys

    if args.action == "list":
        letters = outbox.dead_letters(args.limit, integration=args.integration)
        disabled = outbox.disabled()
        if args.format == "jsonl":
            for d in letters:
                print(json.dumps(dataclasses.asdict(d), sort_keys=True))
            return 0
        for name, record in sorted(disabled.items()):
            print(f"integration {name} is DISABLED since {_when(record.get('at', 0))} "
                  f"(HTTP {record.get('status_code', '?')}); `synthspot dlq replay` or `dlq enable {name}`")
        if not letters:
            print("no dead letters")
            return 0
        print(f"{'died (UTC)':<19}  {'attempts':>8}  {'reason':<26}  {'last':>4}  id")
        for d in letters:
            print(f"{_when(d.dead_at):<19}  {d.attempts:>8}  {d.reason:<26}  {d.last_status or '-':>4}  {d.id}")
        return 0

    if args.action == "enable":
        changed = outbox.enable(args.name)
        print(f"{args.name}: {'re-enabled' if changed else 'was not disabled'}")
        return 0

    if args.all == bool(args.ids):
        print("synthspot dlq replay: give delivery ids or --all (not both)", file=sys.stderr)
        return 2
    if args.integration and not args.all:
        print("synthspot dlq replay: --integration goes with --all", file=sys.stderr)
        return 2
    counts = outbox.replay(args.ids or None, integration=args.integration)
    print(f"replayed {counts['replayed']}" + "".join(
        f", {n} {k.replace('_', ' ')}" for k, n in counts.items() if k != "replayed" and n))
    return 0 if not counts["not_found"] and not counts["expired"] else 1
