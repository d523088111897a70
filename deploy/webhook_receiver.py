"""A webhook receiver for trying synthspot out (deploy/compose.yaml's `receiver` service).

It checks each request's Standard Webhooks signature with the secrets in WEBHOOK_SECRETS
(``whsec_...``, comma- or space-separated), answers 401 to forged or stale requests (so the
deliverer retries them, then dead-letters them) and 204 to genuine ones, deduplicates on the
``webhook-id`` header as a platform should, and prints one line per verdict. ``GET /`` lists the
last verdicts received as JSON; ``GET /healthz`` answers 200.

Standard library plus synthspot's own signing module (standard library only too), so it runs in
the synthspot image: ``python /receiver.py``. A platform's real receiver does the same three
things: verify, deduplicate, answer 2xx fast.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from synthspot.integrations.signing import WebhookVerificationError, verify_webhook

MAX_BODY_BYTES = 1 << 20
KEEP = 200


class Inbox:
    """Verdicts received, newest last, at most KEEP, keyed by webhook-id."""

    def __init__(self) -> None:
        self.events: OrderedDict[str, dict] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, msg_id: str, event: dict) -> bool:
        """True when ``msg_id`` is new (a retry of a delivered message is not)."""
        with self.lock:
            if msg_id in self.events:
                return False
            self.events[msg_id] = event
            while len(self.events) > KEEP:
                self.events.popitem(last=False)
            return True

    def recent(self) -> list[dict]:
        with self.lock:
            return list(self.events.values())


def summary(event: object) -> str:
    """One line about a verdict event: ``{"type": "verdict.created", "timestamp": ..., "data": <verdict>}``."""
    verdict = event.get("data", event) if isinstance(event, dict) else {}
    verdict = verdict if isinstance(verdict, dict) else {}
    image = verdict.get("image") if isinstance(verdict.get("image"), dict) else {}
    parts = [f"{key}={verdict[key]}" for key in ("task_id", "label", "score") if verdict.get(key) is not None]
    if image.get("url"):
        parts.append(f"image={image['url']}")
    if isinstance(verdict.get("error"), dict):
        parts.append(f"error={verdict['error'].get('reason')}")
    return " ".join(parts) or json.dumps(event)[:200]


def make_server(host: str, port: int, secrets: list[str]) -> ThreadingHTTPServer:
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] == "/healthz":
                self._send(200, b"ok\n")
            else:
                self._send(200, json.dumps(inbox.recent(), indent=1).encode() + b"\n", "application/json")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, b"too large\n")
                return
            body = self.rfile.read(length)
            try:
                event = verify_webhook(self.headers, body, secrets)
            except WebhookVerificationError as exc:
                print(f"refused {self.path}: {exc}", flush=True)
                self._send(401, f"{exc}\n".encode())
                return
            msg_id = self.headers.get("webhook-id", "")
            if inbox.add(msg_id, {"webhook_id": msg_id, "path": self.path, "event": event}):
                print(f"received {self.path} {msg_id}: {summary(event)}", flush=True)
            else:
                print(f"duplicate {self.path} {msg_id} (already received; answered 204 again)", flush=True)
            self._send(204)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.inbox = inbox  # type: ignore[attr-defined]
    return server


def main() -> int:
    secrets = [s for s in re.split(r"[,\s]+", os.environ.get("WEBHOOK_SECRETS", "")) if s]
    if not secrets:
        print("webhook_receiver: set WEBHOOK_SECRETS to the integration's whsec_ secret(s)", file=sys.stderr)
        return 2
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    server = make_server(host, port, secrets)
    print(f"webhook receiver on http://{host}:{port}/ (POST any path; GET / lists verdicts)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
