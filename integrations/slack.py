"""Slack incoming webhooks: a short message per verdict for a moderators' channel.

The incoming-webhook URL is the secret (anyone holding it can post to the channel): it is kept in
a ``SecretStr`` setting and logged as ``https://hooks.slack.com`` only. Slack does not verify
signatures, so none are sent.

The message has a ``text`` fallback (notifications, screen readers) and Block Kit ``blocks``:
label, score, image reference and task id. Task ids, image keys and error messages come from
platforms and uploads, so they are escaped (``&``, ``<``, ``>``) before they reach mrkdwn: a task
id of ``<!channel>`` must not page a whole channel.

Slack accepts about one message per second per webhook; ``min_interval_s`` (an extra key of the
integration's settings, default 1.0) spaces posts out, and a 429 with ``Retry-After`` is honoured
by the deliverer like any other throttling answer.
"""
from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from . import http
from .registry import Delivery, DeliveryResult, IntegrationSpec, Notifier
from .webhook import check_url

if TYPE_CHECKING:
    from synthspot.worker.contract import Verdict

EMOJI = {"synthetic": ":rotating_light:", "review": ":eyes:", "real": ":white_check_mark:", "error": ":warning:"}


def escape(text: str, limit: int = 1900) -> str:
    """Slack mrkdwn escaping of untrusted text (and a length cap below Slack's 2000-character field limit)."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(verdict: "Verdict") -> dict[str, Any]:
    """``{"text": ..., "blocks": [...]}`` for one verdict."""
    score = f"{verdict.score:.3f}" if verdict.score is not None else "n/a"
    image = verdict.image.url if verdict.image else "(no image reference)"
    emoji = EMOJI.get(verdict.label, "")
    text = f"{emoji} synthspot verdict: {verdict.label} (score {score}) for task {escape(verdict.task_id, 200)}"
    fields = [
        {"type": "mrkdwn", "text": f"*Label*\n{emoji} {verdict.label}"},
        {"type": "mrkdwn", "text": f"*Score*\n{score}"},
        {"type": "mrkdwn", "text": f"*Image*\n{escape(image)}"},
        {"type": "mrkdwn", "text": f"*Task id*\n{escape(verdict.task_id)}"},
    ]
    context = []
    if verdict.model is not None:
        context.append(f"model {escape(verdict.model.name, 200)}")
    if "synthetic" in verdict.thresholds:
        context.append(f"threshold {verdict.thresholds['synthetic']:.3f}")
    context.append(f"{verdict.created_at:%Y-%m-%d %H:%M:%S} UTC")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"synthspot: {verdict.label}"[:150]}},
        {"type": "section", "fields": fields},
    ]
    if verdict.error is not None:
        reason, message = escape(verdict.error.reason, 100), escape(verdict.error.message)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Error* `{reason}`: {message}"}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": text, "blocks": blocks}


class SlackNotifier(Notifier):
    """Posts verdicts to one Slack incoming webhook, at most one message per ``min_interval_s``."""

    def __init__(self, spec: IntegrationSpec) -> None:
        super().__init__(spec)
        self.url = check_url(spec.url, spec.name)
        self.min_interval_s = float(spec.options.get("min_interval_s", 1.0))
        if self.min_interval_s < 0:
            raise ValueError(f"integration {spec.name!r}: min_interval_s must be >= 0")
        self._client = http.make_client(spec.timeout_s)
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def _pace(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.min_interval_s
        if slot > now:
            time.sleep(slot - now)

    def deliver(self, verdict: "Verdict", delivery: Delivery) -> DeliveryResult:
        body = json.dumps(slack_message(verdict), separators=(",", ":"), ensure_ascii=False).encode()
        self._pace()
        return http.post(self._client, self.url, body, {"content-type": "application/json"})

    def close(self) -> None:
        self._client.close()
