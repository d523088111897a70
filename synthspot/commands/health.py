"""Check a running synthspot process through its metrics server: exit 0 when healthy, 1 when not.

For container health checks (Docker's HEALTHCHECK, compose's healthcheck, an exec probe). By
default it asks ``/readyz`` (the model is loaded and verified); ``--live`` asks ``/livez``
(the process serves). The port is the worker's (SYNTHSPOT_METRICS_PORT, 9808) or the
deliverer's (SYNTHSPOT_DELIVER_METRICS_PORT, 9809); ``--role auto`` tries the worker's port,
then the deliverer's.

It imports neither torch nor Celery, so ``python -m synthspot.commands.health`` answers in
well under a second; Kubernetes should use its own ``httpGet`` probes on the same paths.
"""
from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=("auto", "worker", "deliver"), default="auto",
                        help="whose port to ask: the worker's, the deliverer's, or the first that answers "
                             "(default: %(default)s)")
    parser.add_argument("--live", action="store_true", help="ask /livez (serving) instead of /readyz (ready)")
    parser.add_argument("--port", type=int, default=None,
                        help="ask this port (default: from the settings of --role)")
    parser.add_argument("--host", default="127.0.0.1", help="address to ask (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print nothing, only set the exit status")


def ports_to_try(args: argparse.Namespace) -> list[int]:
    if args.port is not None:
        return [args.port]
    from synthspot.worker.settings import load_settings

    settings = load_settings()
    ports = {"worker": [settings.metrics_port], "deliver": [settings.deliver_metrics_port],
             "auto": [settings.metrics_port, settings.deliver_metrics_port]}[args.role]
    return [p for p in ports if p]


def probe(host: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    """``(healthy, one-line detail)`` of one GET; connection failures are not healthy."""
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http only
            body = response.read(200).decode(errors="replace").strip()
            return response.status == 200, f"{url}: {response.status} {body}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code} {exc.read(200).decode(errors='replace').strip()}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"


def run(args: argparse.Namespace) -> int:
    path = "/livez" if args.live else "/readyz"
    try:
        ports = ports_to_try(args)
    except ValueError as exc:  # broken settings: the process cannot be healthy either
        if not args.quiet:
            print(f"unhealthy: settings: {exc}", file=sys.stderr)
        return 1
    if not ports:
        if not args.quiet:
            print("unhealthy: the metrics server is off (port 0); nothing to ask", file=sys.stderr)
        return 1
    details = []
    for port in ports:
        ok, detail = probe(args.host, port, path, args.timeout)
        if ok:
            if not args.quiet:
                print(f"healthy: {detail}")
            return 0
        details.append(detail)
        if args.role != "auto" or args.port is not None:
            break
        if "Connection refused" not in detail and "Errno 111" not in detail:
            break  # something answers on this port and says no: do not ask the next one
    if not args.quiet:
        print(f"unhealthy: {'; '.join(details)}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m synthspot.commands.health``: the same command without the CLI's imports."""
    parser = argparse.ArgumentParser(prog="synthspot health", description=__doc__.strip().split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
