"""The end-to-end safety net: a submitted check with no verdict is sent again.

Celery over Redis is at-least-once only while the message exists somewhere: kombu pops a
message with ``BRPOP`` and records it as unacknowledged in a *second* command, so a worker
killed between the two loses that message for good (and duplicate/lost reports exist for other
paths too: celery#5935, #3270, #7918). synthspot therefore never trusts the broker alone:

* ``submit`` records every check in ``synthspot:pending`` (its JSON) and
  ``synthspot:pending_due`` (when to look again: submission + ``reconcile_after_s``) *before*
  publishing it;
* storing the verdict removes both entries, atomically with the verdict itself;
* every worker runs ``Reconciler.sweep`` periodically (one at a time, under a Redis lock): a
  check that is due and still has no verdict is published again and its due time pushed back.

Re-sending is harmless: verdicts are deduplicated by task id, so the first to be stored wins.
``reconcile_after_s`` must exceed the visibility timeout, so that kombu's own redelivery goes
first in the ordinary case.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from prometheus_client import Counter

from .store import Keys

log = logging.getLogger(__name__)
RESENT = Counter("synthspot_checks_resent_total", "Checks published again by the reconciler because no verdict "
                 "arrived in time (the broker lost or still holds them)")
LOCK_KEY = Keys.pending + ":lock"


def record_pending(redis: Any, messages: list[dict[str, Any]], after_s: float) -> None:
    """Note checks as awaiting a verdict (call before publishing them)."""
    due = time.time() + after_s
    pipe = redis.pipeline(transaction=True)
    for message in messages:
        pipe.hsetnx(Keys.pending, message["task_id"], json.dumps(message, separators=(",", ":")))
        pipe.zadd(Keys.pending_due, {message["task_id"]: due}, nx=True)
    pipe.execute()


class Reconciler:
    def __init__(self, redis: Any, send: Any, *, after_s: float, interval_s: float, batch: int = 500) -> None:
        self.redis = redis
        self.send = send  # callable(message dict) -> None, publishes one check
        self.after_s = after_s
        self.interval_s = interval_s
        self.batch = batch

    def sweep(self, now: float | None = None) -> int:
        """Re-send due checks that still have no verdict; returns how many were sent."""
        token = uuid.uuid4().hex
        if not self.redis.set(LOCK_KEY, token, nx=True, ex=max(5, int(self.interval_s))):
            return 0
        sent = 0
        try:
            now = time.time() if now is None else now
            due = self.redis.zrangebyscore(Keys.pending_due, "-inf", now, start=0, num=self.batch)
            for raw_id in due:
                task_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                if self.redis.exists(Keys.verdict(task_id)):
                    self.redis.zrem(Keys.pending_due, task_id)
                    self.redis.hdel(Keys.pending, task_id)
                    continue
                raw = self.redis.hget(Keys.pending, task_id)
                if raw is None:
                    self.redis.zrem(Keys.pending_due, task_id)
                    continue
                self.send(json.loads(raw))
                self.redis.zadd(Keys.pending_due, {task_id: now + self.after_s}, xx=True)
                RESENT.inc()
                sent += 1
                log.warning("no verdict in time: check sent again", extra={"task_id": task_id})
        finally:
            if self.redis.get(LOCK_KEY) in (token, token.encode()):
                self.redis.delete(LOCK_KEY)
        return sent

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - Redis away: try again next round
                log.warning("reconcile sweep failed", exc_info=True)
