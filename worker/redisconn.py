"""One Redis client factory for every synthspot process (worker, deliverer, commands).

Light on purpose: the deliverer and ``synthspot dlq`` import it without loading torch.
"""
from __future__ import annotations

from typing import Any


def connect(url: str, ca_file: str | None = None, retries: int = 40) -> Any:
    """A Redis client that rides out restarts: reconnects with exponential backoff (capped at 2 s),
    ``retries`` times (about a minute with 40), on connection errors and timeouts."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry

    kwargs: dict[str, Any] = {}
    if ca_file and url.startswith("rediss://"):
        kwargs["ssl_ca_certs"] = ca_file
    return redis.Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError], **kwargs)
