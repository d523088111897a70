"""A tiny HTTP server per process: ``/metrics`` (Prometheus), ``/livez`` and ``/readyz``.

``/livez`` only says the process serves; ``/readyz`` answers 503 until the weights are loaded
and their sha256 verified, so Kubernetes sends no traffic to (and counts no capacity of) a
worker that is still loading its model.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import registry

log = logging.getLogger(__name__)


def serve(host: str, port: int, ready: Callable[[], bool]) -> ThreadingHTTPServer:
    """Start the server in a daemon thread and return it (``server.shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, status, ctype = generate_latest(registry()), 200, CONTENT_TYPE_LATEST
            elif path == "/livez":
                body, status, ctype = b"ok\n", 200, "text/plain"
            elif path == "/readyz":
                ok = ready()
                body, status, ctype = (b"ready\n" if ok else b"loading\n"), (200 if ok else 503), "text/plain"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="synthspot-httpd", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
