"""A real webhook receiver on loopback, and ``synthspot deliver`` as a real process, for delivery tests.

``Receiver`` is a threaded HTTP server. Each path is an endpoint with optional signing secrets;
requests to a signed endpoint are verified twice, with ``synthspot.integrations.signing`` and with
the PyPI ``standardwebhooks`` package, and refused with 401 unless both accept them. Answers are
scripted per endpoint (``Reply``: status, headers such as ``Retry-After``, a delay past the
sender's timeout, a redirect) and default to 200 once the script runs out. Every request is
recorded; ``events`` are the unique ``webhook-id`` values answered with 2xx, what a deduplicating
platform would act on.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from services import SynthspotProcess, metric_samples
from synthspot.integrations.signing import WebhookVerificationError, verify_webhook


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (longer than the sender's timeout: a timeout)
    body: bytes = b"ok"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0  # what the receiver answers (or will, after its delay)
    answered: bool = False  # the answer was written (False while sleeping, or if the sender hung up)
    verified: bool | None = None  # by synthspot's verify_webhook (None: endpoint not signed)
    verified_sw: bool | None = None  # by standardwebhooks

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Endpoint:
    secrets: list[str]
    script: deque[Reply] = field(default_factory=deque)
    default: Reply = field(default_factory=Reply)


class Receiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.received: list[Received] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                receiver._handle(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender that hung up (its timeout, a closed keep-alive connection)

        self.server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, path: str, secrets: Iterable[str] = (), *replies: Reply, default: Reply | None = None) -> str:
        """Add an endpoint (``secrets``: the receiver's, verification on when given); returns its URL."""
        self.endpoints[path] = Endpoint(list(secrets), deque(replies), default or Reply())
        return self.base + path

    def script(self, path: str, *replies: Reply, default: Reply | None = None) -> None:
        with self._cond:
            ep = self.endpoints[path]
            ep.script.extend(replies)
            if default is not None:
                ep.default = default

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?", 1)[0]
        rec = Received(path, headers, body, time.time())
        ep = self.endpoints.get(path)
        if ep is None:
            reply = Reply(404)
        else:
            if ep.secrets:
                rec.verified = _verify_ours(headers, body, ep.secrets)
                rec.verified_sw = _verify_standardwebhooks(headers, body, ep.secrets)
            with self._cond:
                reply = ep.script.popleft() if ep.script else ep.default
            if ep.secrets and not (rec.verified and rec.verified_sw):
                reply = Reply(401, body=b"bad signature")
        rec.status = reply.status
        with self._cond:
            self.received.append(rec)
            self._cond.notify_all()
        if reply.delay_s:
            time.sleep(reply.delay_s)
        try:
            h.send_response(reply.status)
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.send_header("content-length", str(len(reply.body)))
            h.end_headers()
            h.wfile.write(reply.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the sender gave up (its timeout)
        with self._cond:
            rec.answered = True
            self._cond.notify_all()

    # --- what arrived ----------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[Received]:
        with self._cond:
            return [r for r in self.received if path is None or r.path == path]

    def events(self, path: str) -> dict[str, Received]:
        """webhook-id (or body, for unsigned endpoints) -> first request answered 2xx: what a platform acts on."""
        out: dict[str, Received] = {}
        for r in self.requests(path):
            if r.answered and 200 <= r.status < 300:
                out.setdefault(r.webhook_id or r.body.decode(), r)
        return out

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = [(r.path, r.status) for r in self.received]
                    raise TimeoutError(f"receiver: no {what} after {timeout}s; got {summary}")
                self._cond.wait(min(left, 0.2))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _verify_ours(headers: dict[str, str], body: bytes, secrets: list[str]) -> bool:
    try:
        verify_webhook(headers, body, secrets)
        return True
    except WebhookVerificationError:
        return False


def _verify_standardwebhooks(headers: dict[str, str], body: bytes, secrets: list[str]) -> bool:
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True
        except Exception:  # noqa: BLE001 - the package raises its own error types
            continue
    return False


class DelivererProcess(SynthspotProcess):
    """``synthspot deliver``; ready once it reaches Redis."""

    command = ["deliver"]
    port_setting = "SYNTHSPOT_DELIVER_METRICS_PORT"
    role = "deliverer"

    def metric(self, name: str, **labels: str) -> float:
        """The value of the sample of ``/metrics`` with exactly these labels (0 when absent)."""
        return metric_samples(self.metrics()).get((name, frozenset(labels.items())), 0.0)

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
