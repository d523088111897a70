"""The generic JSON webhook: a verdict, POSTed and signed per the Standard Webhooks specification.

Body (``application/json``, UTF-8), the envelope the specification recommends::

    {"type": "verdict.created", "timestamp": "<verdict created_at, RFC 3339>", "data": <verdict>}

``data`` is the verdict exactly as stored (schema ``synthspot.verdict/v1``, docs/task-contract.md).
The body is the same bytes on every attempt; only ``webhook-timestamp`` and the signature change.

``webhook-id`` is ``msg_`` + 32 hex digits of sha256 of the task id: one per verdict, the same on
every retry, every replay and every integration, so a receiver deduplicates on it (delivery is at
least once). Receivers verify with ``synthspot.integrations.signing.verify_webhook`` or any
Standard Webhooks library (docs/webhooks.md).
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from . import http
from .registry import Delivery, DeliveryResult, IntegrationSpec, Notifier
from .signing import parse_secret, signature_headers

if TYPE_CHECKING:
    from synthspot.worker.contract import Verdict

EVENT_TYPE = "verdict.created"


def message_id(task_id: str) -> str:
    """The ``webhook-id`` of a verdict: stable across retries, replays and integrations."""
    return "msg_" + hashlib.sha256(task_id.encode()).hexdigest()[:32]


def webhook_body(verdict: "Verdict") -> bytes:
    """The envelope, serialised deterministically (sorted keys, no spaces)."""
    data = json.loads(verdict.to_json())
    doc = {"type": EVENT_TYPE, "timestamp": data["created_at"], "data": data}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def check_url(url: str | None, name: str) -> str:
    from urllib.parse import urlsplit

    if not url:
        raise ValueError(f"integration {name!r} needs a url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"integration {name!r}: the url must be http(s)://host/... ({http.redact_url(url)})")
    return url


class WebhookNotifier(Notifier):
    """Signed JSON POSTs to one endpoint. Needs at least one ``whsec_`` secret: no unsigned webhooks."""

    def __init__(self, spec: IntegrationSpec) -> None:
        super().__init__(spec)
        self.url = check_url(spec.url, spec.name)
        if not spec.secrets:
            raise ValueError(f"integration {spec.name!r} needs a signing secret (whsec_...)")
        try:
            self._keys = [parse_secret(s) for s in spec.secrets]
        except ValueError as exc:
            raise ValueError(f"integration {spec.name!r}: {exc}") from None
        self._client = http.make_client(spec.timeout_s)  # thread-safe, shared by the pool

    def deliver(self, verdict: "Verdict", delivery: Delivery) -> DeliveryResult:
        body = webhook_body(verdict)
        headers = {"content-type": "application/json", **signature_headers(message_id(verdict.task_id), body,
                                                                           self._keys)}
        return http.post(self._client, self.url, body, headers)

    def close(self) -> None:
        self._client.close()
