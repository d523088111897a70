"""Standard Webhooks signatures: how synthspot signs a webhook and how a receiver checks one.

The scheme (https://www.standardwebhooks.com/) in one paragraph: every request carries
``webhook-id`` (the message id, stable across retries: the receiver's idempotency key),
``webhook-timestamp`` (unix seconds when this attempt was signed) and ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256>``). The signed content is
``f"{id}.{timestamp}.".encode() + body``, keyed with the secret's bytes; a secret is written
``whsec_`` + base64 of 24-64 random bytes.

Secret rotation: the sender signs with every configured secret (one ``v1,`` entry each), and a
receiver accepts a request if any entry matches any secret it holds. So during a rotation the
sender holds old and new secrets, receivers move from old to new at their own pace, and then the
old secret is dropped on the sender.

This module is standalone (standard library only), so a receiver can copy it or import it
without installing torch::

    from synthspot.integrations.signing import verify_webhook
    event = verify_webhook(request.headers, request.body, ["whsec_..."])  # raises if forged/stale
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_S = 300

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh synthspot webhook (missing header, bad or stale signature)."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret (give it to the receiver over a secure channel)."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret has {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def parse_secret(secret: str | bytes) -> bytes:
    """The key bytes of a ``whsec_`` secret (raw bytes pass through, checked for length).

    Errors never echo the secret, so they are safe to log.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip()
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
        encoded = text[len(SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, "
                         f"this one {len(key)}")
    return key


def _keys(secrets: Iterable[str | bytes]) -> list[bytes]:
    keys = [parse_secret(s) for s in secrets]
    if not keys:
        raise ValueError("at least one webhook secret is needed")
    return keys


def _mac(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Iterable[str | bytes]) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(f"{SIGNATURE_VERSION},{base64.b64encode(_mac(k, msg_id, timestamp, body)).decode()}"
                    for k in _keys(secrets))


def signature_headers(msg_id: str, body: bytes, secrets: Iterable[str | bytes],
                      timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt (timestamp: now)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(ts), HEADER_SIGNATURE: sign(msg_id, ts, body, secrets)}


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secrets: Iterable[str | bytes] | str,
                   tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> Any:
    """Check a received webhook and return its parsed JSON body.

    ``headers``: any mapping with ``items()`` (a dict, ``http.client.HTTPMessage``, a framework's
    headers object); names are matched case-insensitively. ``body``: the raw bytes as received,
    before any JSON parsing. ``secrets``: one ``whsec_`` secret or several (rotation). Raises
    ``WebhookVerificationError`` when a header is missing, the timestamp is more than
    ``tolerance_s`` away from now (a replayed or delayed request), or no signature matches.
    Deduplicate on ``headers["webhook-id"]`` afterwards: delivery is at least once.
    """
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    keys = _keys(secrets)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lower = {str(k).lower(): v for k, v in headers.items()}
    msg_id, stamp, signature = (lower.get(HEADER_ID), lower.get(HEADER_TIMESTAMP), lower.get(HEADER_SIGNATURE))
    if not (msg_id and stamp and signature):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance window")
    expected = [_mac(k, msg_id, timestamp, raw) for k in keys]
    for entry in signature.split():
        version, _, value = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, e) for e in expected):
            try:
                return json.loads(raw)
            except ValueError:
                raise WebhookVerificationError("signed body is not JSON") from None
    raise WebhookVerificationError("no matching signature")
