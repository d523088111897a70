"""One HTTP POST of a delivery, and how its answer is classified.

Rules (Standard Webhooks' sender guidance): explicit timeouts; redirects are never followed (a
3xx is a failed attempt: a redirect could move a signed verdict to a host nobody vetted); only
2xx is success; 410 Gone means "stop sending here"; 429/502/503/504 are throttling or a busy
upstream and their ``Retry-After`` (seconds or an HTTP date) is honoured; anything else,
timeouts and connection errors included, is retried on the schedule.

The response body is never read beyond a few bytes and never logged: it is the endpoint's to
say, and may echo anything.
"""
from __future__ import annotations

import email.utils
import time
from urllib.parse import urlsplit

import httpx

from .registry import DeliveryResult

THROTTLE_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "synthspot-webhooks/1"


def redact_url(url: str) -> str:
    """``scheme://host[:port]``: no credentials, path or query (a Slack URL's path is its secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or '?'}://{host}{port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(status_code: int, retry_after: str | None = None) -> DeliveryResult:
    """The outcome of an HTTP answer (see the module docstring)."""
    if 200 <= status_code < 300:
        return DeliveryResult("delivered", status_code)
    if status_code == 410:
        return DeliveryResult("gone", status_code, error="410 Gone")
    wait = parse_retry_after(retry_after) if status_code in THROTTLE_STATUSES else None
    kind = "redirect (not followed)" if 300 <= status_code < 400 else "non-2xx answer"
    return DeliveryResult("retry", status_code, retry_after_s=wait, error=f"HTTP {status_code}: {kind}")


def make_client(timeout_s: float) -> httpx.Client:
    """A client that never follows redirects, with a connect timeout of at most 5 s.

    ``trust_env`` stays on, so an egress proxy set by ``HTTPS_PROXY``/``NO_PROXY`` applies.
    """
    timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
    return httpx.Client(follow_redirects=False, timeout=timeout, headers={"user-agent": USER_AGENT},
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))


def _safe_error(exc: Exception, url: str) -> str:
    text = str(exc) or type(exc).__name__
    for secret_part in {url, urlsplit(url).path, urlsplit(url).query} - {"", "/"}:
        text = text.replace(secret_part, "")
    return f"{type(exc).__name__}: {text}"[:200]


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
    """POST ``body``; classify the answer, a timeout or a transport error (never raises for those)."""
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            return classify(response.status_code, response.headers.get("retry-after"))
    except httpx.TimeoutException as exc:
        return DeliveryResult("retry", error=f"timeout ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return DeliveryResult("retry", error=_safe_error(exc, url))
