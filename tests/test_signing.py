"""Signatures, payloads and answer classification: pure functions, cross-checked with `standardwebhooks`."""
from __future__ import annotations

import base64
import json
import sys
import time
from datetime import datetime, timezone
from email.utils import formatdate

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as SWError

from synthspot.integrations import http, registry
from synthspot.integrations.registry import IntegrationSpec
from synthspot.integrations.signing import (WebhookVerificationError, generate_secret, parse_secret, sign,
                                            signature_headers, verify_webhook)
from synthspot.integrations.slack import escape, slack_message
from synthspot.integrations.webhook import WebhookNotifier, message_id, webhook_body
from synthspot.worker.contract import ErrorInfo, ImageRef, Verdict

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = generate_secret()
BODY = b'{"type":"verdict.created","data":{"label":"synthetic"}}'


def verdict(task_id: str = "t-1", label: str = "synthetic", **kw) -> Verdict:
    return Verdict(task_id=task_id, image=ImageRef(url="s3://uploads/a/b.png"), status="scored", label=label,
                   score=0.97, worker="test", **kw)


def test_our_signature_verifies_with_standardwebhooks_and_back():
    headers = signature_headers("msg_1", BODY, [NEW])
    assert Webhook(NEW).verify(BODY, headers) == json.loads(BODY)
    assert verify_webhook(headers, BODY, NEW) == json.loads(BODY)
    # and a signature made by the package verifies with ours
    ts = int(time.time())
    theirs = Webhook(NEW).sign("msg_2", datetime.fromtimestamp(ts, tz=timezone.utc), BODY.decode())
    verify_webhook({"Webhook-Id": "msg_2", "Webhook-Timestamp": str(ts), "Webhook-Signature": theirs}, BODY, [NEW])
    assert sign("msg_2", ts, BODY, [NEW]) == theirs


def test_rotation_signs_with_both_secrets_and_receivers_accept_either():
    headers = signature_headers("msg_1", BODY, [NEW, OLD])
    assert len(headers["webhook-signature"].split()) == 2
    for receiver_secrets in ([OLD], [NEW], [OLD, NEW]):
        verify_webhook(headers, BODY, receiver_secrets)
    Webhook(OLD).verify(BODY, headers)
    Webhook(NEW).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify_webhook(headers, BODY, [generate_secret()])
    with pytest.raises(SWError):
        Webhook(generate_secret()).verify(BODY, headers)


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "signature", "version", "missing"])
def test_forgeries_are_refused(tamper):
    headers = signature_headers("msg_1", BODY, [NEW])
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"synthetic", b"real")
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    elif tamper == "signature":
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif tamper == "version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")
    else:
        del headers["webhook-signature"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, [NEW])


def test_stale_and_future_timestamps_are_refused():
    now = time.time()
    for skew in (-301, 301):
        headers = signature_headers("msg_1", BODY, [NEW], timestamp=int(now + skew))
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            verify_webhook(headers, BODY, [NEW], now=now)
        verify_webhook(headers, BODY, [NEW], now=now, tolerance_s=600)


def test_secrets_are_checked_and_never_echoed():
    assert len(parse_secret(generate_secret(24))) == 24
    Webhook(generate_secret(64))  # the package reads our secrets
    short = "whsec_" + base64.b64encode(b"secret-bytes").decode()
    for bad in ("no-prefix-" + "a" * 40, short, "whsec_!!!not base64!!!"):
        with pytest.raises(ValueError) as exc:
            parse_secret(bad)
        assert bad not in str(exc.value) and bad[6:] not in str(exc.value)
    with pytest.raises(ValueError, match="needs a signing secret"):
        WebhookNotifier(IntegrationSpec(name="p", type="webhook", url="https://x.example/hook"))


def test_webhook_body_is_the_verdict_in_an_envelope_and_the_id_is_stable():
    v = verdict()
    body = webhook_body(v)
    doc = json.loads(body)
    assert doc["type"] == "verdict.created"
    assert doc["data"] == json.loads(v.to_json())
    assert doc["data"]["schema"] == "synthspot.verdict/v1"
    assert doc["timestamp"] == doc["data"]["created_at"]
    assert Verdict.model_validate(doc["data"]) == v
    assert webhook_body(Verdict.from_json(v.to_json())) == body  # same bytes on every attempt
    assert message_id("t-1") == message_id("t-1") != message_id("t-2")
    assert message_id("t-1").startswith("msg_") and len(message_id("t-1")) == 36


@pytest.mark.parametrize("status,outcome,wait", [
    (200, "delivered", None), (204, "delivered", None), (299, "delivered", None),
    (301, "retry", None), (307, "retry", None), (400, "retry", None), (404, "retry", None),
    (410, "gone", None), (429, "retry", 7.0), (500, "retry", None), (502, "retry", 7.0), (503, "retry", 7.0),
    (504, "retry", 7.0),
])
def test_answers_are_classified(status, outcome, wait):
    result = http.classify(status, "7")
    assert (result.outcome, result.status_code, result.retry_after_s) == (outcome, status, wait)


def test_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    assert http.parse_retry_after("120") == 120
    assert 58 <= http.parse_retry_after(formatdate(now + 60, usegmt=True), now=now) <= 61
    assert http.parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0
    assert http.parse_retry_after("soon") is None and http.parse_retry_after(None) is None


def test_urls_are_redacted_to_scheme_and_host():
    assert http.redact_url("https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com"
    assert http.redact_url("http://user:pw@10.0.0.1:8443/p?token=x") == "http://10.0.0.1:8443"
    spec = IntegrationSpec(name="s", type="slack", url="https://hooks.slack.com/services/T0/B0/SECRET",
                           secrets=(NEW,), options={"k": "v"})
    assert "SECRET" not in repr(spec) and NEW not in repr(spec)
    notifier = registry.create(spec)
    assert "SECRET" not in repr(notifier) and "hooks.slack.com" in repr(notifier)


def test_slack_message_escapes_untrusted_text():
    v = verdict(task_id="<!channel>&x", label="review",
                error=None, metadata={"m": 1})
    msg = slack_message(v)
    flat = json.dumps(msg)
    assert "<!channel>" not in flat and "&lt;!channel&gt;&amp;x" in flat
    assert msg["text"].startswith(":eyes: synthspot verdict: review (score 0.970)")
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in msg["blocks"][1]["fields"]}
    assert fields == {"*Label*": ":eyes: review", "*Score*": "0.970", "*Image*": "s3://uploads/a/b.png",
                      "*Task id*": "&lt;!channel&gt;&amp;x"}
    err = Verdict(task_id="t", image=None, status="error", label="error", score=None, worker="w",
                  error=ErrorInfo(reason="not_an_image", message="<b>"))
    assert "&lt;b&gt;" in json.dumps(slack_message(err))
    assert escape("x" * 5000).endswith("…") and len(escape("x" * 5000)) == 1900


def test_registry_knows_builtins_and_plugins(tmp_path, monkeypatch):
    assert {"webhook", "slack"} <= set(registry.available())
    with pytest.raises(ValueError, match="registered: .*slack.*webhook"):
        registry.load_factory("nope")
    # a platform's own package: a module plus an entry point in its installed metadata
    (tmp_path / "acme_notifier.py").write_text(
        "from synthspot.integrations.registry import Notifier, DeliveryResult\n"
        "class Acme(Notifier):\n"
        "    def deliver(self, verdict, delivery):\n"
        "        return DeliveryResult('delivered', 200)\n")
    dist = tmp_path / "acme_notifier-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-notifier\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[synthspot.integrations]\nacme = acme_notifier:Acme\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_cache", None)
    try:
        notifier = registry.create(IntegrationSpec(name="acme-prod", type="acme", options={"region": "eu"}))
        assert type(notifier).__name__ == "Acme" and notifier.spec.options["region"] == "eu"
    finally:
        registry._cache = None
        sys.modules.pop("acme_notifier", None)


def test_the_documented_five_line_receiver_works():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "webhooks.md").read_text()
    snippet = doc.split("<!-- five-line-snippet -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) == 5
    v = verdict("t-doc")
    body = webhook_body(v)
    acted: list = []
    seen = {message_id("t-dup")}
    for task_id in ("t-doc", "t-dup"):
        raw = webhook_body(verdict(task_id))
        headers = signature_headers(message_id(task_id), raw, [NEW])
        exec(snippet.replace("whsec_...", NEW), {"headers": headers, "raw_body": raw, "already_seen": seen.__contains__,
                                                  "act_on": lambda *a: acted.append(a)})
    assert acted == [("t-doc", "synthetic", 0.97)]  # the duplicate was skipped
    forged = signature_headers(message_id("t-doc"), body, [generate_secret()])
    with pytest.raises(WebhookVerificationError):
        exec(snippet.replace("whsec_...", NEW), {"headers": forged, "raw_body": body, "already_seen": seen.__contains__,
                                                  "act_on": acted.append})
