"""The delivery side of the Redis outbox: claim, finish, retry, dead-letter, replay.

``RedisVerdictStore.put`` (worker/store.py) writes a verdict and its deliveries in one script;
this module moves those deliveries along. Every state change is one Lua script, so a crash or a
Redis restart (AOF) between two steps can only leave a delivery *due again*, never lost:

* **claim**: a due delivery (``outbox`` score <= now) gets ``attempt + 1``, ``status=leased``, a
  random ``lease`` token, ``claimed_by`` and its ``outbox`` score moved to ``now + lease_s``. It
  stays in the outbox, so if its deliverer dies the lease simply runs out and the delivery is due
  again for any deliverer. Attempts are counted at claim time: a delivery that crashes its
  deliverer still moves towards the dead-letter store instead of looping forever.
* **complete / retry / dead-letter** act only while the caller still holds the lease (the token
  matches); a deliverer that outlived its lease changes nothing, and the new holder decides.
* **retry** puts the delivery back at ``now + delay``: ``retry_schedule_s[attempt]`` (Standard
  Webhooks: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) jittered by +-20 %, and no
  sooner than the endpoint's ``Retry-After`` (capped at 24 h, so a hostile answer cannot park it). After the
  last attempt the delivery goes to the ``deadletter`` ZSET (by time of death) with its reason.
* **disable** (an endpoint answered 410 Gone): records the integration in the ``disabled`` HASH,
  shared by all deliverers, and dead-letters the delivery; later deliveries for it are
  dead-lettered without an attempt until ``replay`` (or ``enable``) clears the record.
* **replay** moves dead letters back into the outbox, due now, with a fresh attempt count, and
  re-enables their integrations.

Delivery is therefore at least once; receivers deduplicate on ``webhook-id``.
"""
from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from synthspot.integrations.registry import Delivery

from .redisconn import connect  # noqa: F401 - the one client factory, re-exported for callers
from .store import Keys

log = logging.getLogger(__name__)

JITTER = 0.2
RETRY_AFTER_CAP_S = 86400.0


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


@dataclass(frozen=True)
class Claim:
    """A delivery this deliverer holds a lease on (``lease`` is the proof)."""

    delivery: Delivery
    lease: str


@dataclass(frozen=True)
class DeadLetter:
    id: str
    task_id: str
    integration: str
    attempts: int
    reason: str
    last_status: str
    last_error: str
    created_at: float
    dead_at: float


_CLAIM = """
-- KEYS: outbox, delivery   ARGV: id, now, lease_until, owner, token
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('HINCRBY', KEYS[2], 'attempt', 1)
redis.call('HSET', KEYS[2], 'status', 'leased', 'claimed_by', ARGV[4], 'lease', ARGV[5], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return redis.call('HGETALL', KEYS[2])
"""

_COMPLETE = """
-- KEYS: outbox, delivery   ARGV: id, token, now, status code
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'delivered', 'delivered_at', ARGV[3], 'last_attempt_at', ARGV[3],
           'last_status', ARGV[4])
redis.call('HDEL', KEYS[2], 'lease', 'lease_until', 'claimed_by', 'last_error')
return 1
"""

_RETRY = """
-- KEYS: outbox, delivery   ARGV: id, token, now, due, status code, error
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'pending', 'next_at', ARGV[4], 'last_attempt_at', ARGV[3],
           'last_status', ARGV[5], 'last_error', ARGV[6])
redis.call('HDEL', KEYS[2], 'lease', 'lease_until', 'claimed_by')
return 1
"""

_DEAD = """
-- KEYS: outbox, deadletter, delivery, disabled
-- ARGV: id, token, now, reason, status code, error, attempted (1/0), integration, disabled record ('' = none)
if redis.call('HGET', KEYS[3], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[7] == '0' then redis.call('HINCRBY', KEYS[3], 'attempt', -1) end
if ARGV[7] == '1' then redis.call('HSET', KEYS[3], 'last_attempt_at', ARGV[3], 'last_status', ARGV[5]) end
redis.call('HSET', KEYS[3], 'status', 'dead', 'reason', ARGV[4], 'dead_at', ARGV[3], 'last_error', ARGV[6])
redis.call('HDEL', KEYS[3], 'lease', 'lease_until', 'claimed_by', 'next_at')
if ARGV[9] ~= '' then redis.call('HSET', KEYS[4], ARGV[8], ARGV[9]) end
return 1
"""

_REPLAY = """
-- KEYS: deadletter, outbox, delivery, disabled   ARGV: id, now
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
local integration = redis.call('HGET', KEYS[3], 'integration')
if integration then redis.call('HDEL', KEYS[4], integration) end
redis.call('HSET', KEYS[3], 'status', 'pending', 'attempt', 0, 'replayed_at', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'replays', 1)
redis.call('HDEL', KEYS[3], 'reason', 'dead_at', 'next_at')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


class Outbox:
    """Delivery state transitions on the Redis outbox (see the module docstring)."""

    def __init__(self, client: Any, *, schedule: Sequence[float], lease_s: float, owner: str | None = None,
                 jitter: float = JITTER, retry_after_cap_s: float = RETRY_AFTER_CAP_S,
                 rng: random.Random | None = None) -> None:
        if not schedule:
            raise ValueError("the retry schedule needs at least one attempt")
        self.redis = client
        self.schedule = [float(s) for s in schedule]
        self.lease_s = float(lease_s)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.jitter = jitter
        self.retry_after_cap_s = retry_after_cap_s
        self.rng = rng or random.Random()
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._retry = client.register_script(_RETRY)
        self._dead = client.register_script(_DEAD)
        self._replay = client.register_script(_REPLAY)

    # --- the deliverer's side ------------------------------------------------------------------
    def claim(self, limit: int, now: float | None = None) -> list[Claim]:
        """Lease up to ``limit`` due deliveries, oldest due first."""
        if limit <= 0:
            return []
        now = time.time() if now is None else now
        candidates = self.redis.zrangebyscore(Keys.outbox, "-inf", now, start=0, num=limit)
        claims = []
        for raw in candidates:
            did = _s(raw)
            token = secrets.token_hex(8)
            flat = self._claim(keys=[Keys.outbox, Keys.delivery(did)],
                               args=[did, repr(now), repr(now + self.lease_s), self.owner, token])
            if not flat:
                continue  # another deliverer took it, or it expired
            f = _fields(flat)
            claims.append(Claim(Delivery(id=did, task_id=f.get("task_id", ""), integration=f.get("integration", ""),
                                         attempt=int(f.get("attempt", "1")),
                                         created_at=float(f.get("created_at", "0"))), token))
        return claims

    def next_delay(self, attempt: int, retry_after_s: float | None = None) -> float | None:
        """Seconds until the attempt after ``attempt`` (1-based), or None when it was the last one."""
        if attempt >= len(self.schedule):
            return None
        delay = self.schedule[attempt] * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.retry_after_cap_s))
        return max(0.0, delay)

    def complete(self, claim: Claim, status_code: int | None = None) -> bool:
        """The endpoint took it. False if the lease was lost (another deliverer will try again)."""
        return bool(self._complete(keys=[Keys.outbox, Keys.delivery(claim.delivery.id)],
                                   args=[claim.delivery.id, claim.lease, repr(time.time()), status_code or ""]))

    def retry(self, claim: Claim, delay_s: float, *, status_code: int | None = None, error: str = "") -> bool:
        now = time.time()
        return bool(self._retry(keys=[Keys.outbox, Keys.delivery(claim.delivery.id)],
                                args=[claim.delivery.id, claim.lease, repr(now), repr(now + delay_s),
                                      status_code or "", error[:300]]))

    def dead_letter(self, claim: Claim, reason: str, *, status_code: int | None = None, error: str = "",
                    attempted: bool = True, disable: dict[str, Any] | None = None) -> bool:
        """Move to the dead-letter store; with ``disable``, also mark the integration disabled (410)."""
        d = claim.delivery
        record = json.dumps({**disable, "at": time.time()}, sort_keys=True) if disable is not None else ""
        return bool(self._dead(keys=[Keys.outbox, Keys.deadletter, Keys.delivery(d.id), Keys.disabled],
                               args=[d.id, claim.lease, repr(time.time()), reason, status_code or "", error[:300],
                                     "1" if attempted else "0", d.integration, record]))

    # --- disabled integrations -------------------------------------------------------------------
    def disabled(self) -> dict[str, dict[str, Any]]:
        """Integrations disabled by a 410, with their record (when, status, endpoint fingerprint)."""
        out = {}
        for name, raw in self.redis.hgetall(Keys.disabled).items():
            try:
                out[_s(name)] = json.loads(raw)
            except ValueError:
                out[_s(name)] = {}
        return out

    def disabled_record(self, integration: str) -> dict[str, Any] | None:
        raw = self.redis.hget(Keys.disabled, integration)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return {}

    def enable(self, integration: str) -> bool:
        return bool(self.redis.hdel(Keys.disabled, integration))

    # --- the operator's side -------------------------------------------------------------------
    def dead_letters(self, limit: int = 100, integration: str | None = None) -> list[DeadLetter]:
        """Newest first; entries whose delivery record expired (with its verdict) are dropped."""
        out: list[DeadLetter] = []
        start, chunk = 0, max(limit, 100)
        while len(out) < limit:
            ids = [_s(i) for i in self.redis.zrevrange(Keys.deadletter, start, start + chunk - 1)]
            if not ids:
                break
            start += len(ids)
            pipe = self.redis.pipeline(transaction=False)
            for did in ids:
                pipe.hgetall(Keys.delivery(did))
            gone = []
            for did, h in zip(ids, pipe.execute()):
                f = {_s(k): _s(v) for k, v in h.items()}
                if not f:
                    gone.append(did)
                    continue
                if integration and f.get("integration") != integration:
                    continue
                out.append(DeadLetter(
                    id=did, task_id=f.get("task_id", ""), integration=f.get("integration", ""),
                    attempts=int(f.get("attempt", "0")), reason=f.get("reason", ""),
                    last_status=f.get("last_status", ""), last_error=f.get("last_error", ""),
                    created_at=float(f.get("created_at", "0") or 0), dead_at=float(f.get("dead_at", "0") or 0)))
                if len(out) >= limit:
                    break
            if gone:
                self.redis.zrem(Keys.deadletter, *gone)
                start -= len(gone)
        return out

    def replay(self, ids: Iterable[str] | None = None, integration: str | None = None) -> dict[str, int]:
        """Move dead letters back to the outbox, due now: the given ids, else all (of ``integration``).

        Returns counts: ``replayed``, ``not_found`` (not in the dead-letter store), ``expired``.
        """
        counts = {"replayed": 0, "not_found": 0, "expired": 0}
        if ids is None:
            ids = [d.id for d in self.dead_letters(limit=self.redis.zcard(Keys.deadletter) or 1,
                                                   integration=integration)]
        now = time.time()
        for did in ids:
            r = self._replay(keys=[Keys.deadletter, Keys.outbox, Keys.delivery(did), Keys.disabled],
                             args=[did, repr(now)])
            counts["replayed" if r == 1 else "expired" if r == -1 else "not_found"] += 1
        return counts

    # --- housekeeping ----------------------------------------------------------------------------
    def sizes(self) -> tuple[int, int]:
        """(deliveries in the outbox, leased ones included; dead letters)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(Keys.outbox)
        pipe.zcard(Keys.deadletter)
        outbox, dead = pipe.execute()
        return int(outbox), int(dead)

    def next_due(self) -> float | None:
        first = self.redis.zrange(Keys.outbox, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def prune(self, batch: int = 500) -> int:
        """Drop ids whose delivery record expired (TTL = the verdict's) from outbox and dead letters."""
        removed = 0
        for key in (Keys.outbox, Keys.deadletter):
            start = 0
            while True:
                ids = [_s(i) for i in self.redis.zrange(key, start, start + batch - 1)]
                if not ids:
                    break
                pipe = self.redis.pipeline(transaction=False)
                for did in ids:
                    pipe.exists(Keys.delivery(did))
                gone = [did for did, ok in zip(ids, pipe.execute()) if not ok]
                if gone:
                    self.redis.zrem(key, *gone)
                    removed += len(gone)
                start += len(ids) - len(gone)
        return removed

