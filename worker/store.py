"""Where verdicts live: stored once per task id, and (with Redis) queued for delivery atomically.

``RedisVerdictStore.put`` is the outbox's write side: in one Lua script it stores the verdict
if no verdict exists for that task id (``SET NX``), indexes it, and enqueues one delivery per
routed integration. Either all of that happens or none of it, and a redelivered check finds the
first verdict and changes nothing: verdicts are deduplicated by task id, and a check is
acknowledged only after ``put`` returns.

``JsonlVerdictStore`` is the embedded mode's store: one JSON object per line, appended under
an exclusive file lock, deduplicated the same way. It has no outbox (the file is the sink).

Redis layout (prefix ``synthspot:``): ``verdict:<task_id>`` the verdict JSON (with a TTL);
``verdicts`` ZSET of task ids by creation time; ``outbox`` ZSET of delivery ids by due time;
``delivery:<delivery_id>`` HASH of one delivery's state; ``deadletter`` ZSET of delivery ids by
the time they died; ``pending`` / ``pending_due`` the submitted checks that have no verdict yet
(``worker/reconcile.py``). ``worker/outbox.py`` owns the delivery side of these keys.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .contract import Verdict

PREFIX = "synthspot:"


class Keys:
    """Redis key names, in one place."""

    verdicts = PREFIX + "verdicts"
    pending = PREFIX + "pending"  # HASH task id -> check JSON, written at submission
    pending_due = PREFIX + "pending_due"  # ZSET task id -> when to send it again if still unanswered
    outbox = PREFIX + "outbox"
    deadletter = PREFIX + "deadletter"
    disabled = PREFIX + "disabled"

    @staticmethod
    def verdict(task_id: str) -> str:
        return f"{PREFIX}verdict:{task_id}"

    @staticmethod
    def delivery(delivery_id: str) -> str:
        return f"{PREFIX}delivery:{delivery_id}"


def delivery_id(integration: str, task_id: str) -> str:
    """One delivery per (integration, verdict); stable, so re-enqueueing is idempotent."""
    return f"{integration}/{task_id}"


class VerdictStore(ABC):
    """Verdicts by task id. ``put`` never replaces an existing verdict."""

    @abstractmethod
    def get(self, task_id: str) -> Verdict | None: ...

    def get_many(self, task_ids: list[str]) -> dict[str, Verdict]:
        """The stored verdicts among ``task_ids`` (one round trip where the store allows)."""
        found = {}
        for task_id in task_ids:
            verdict = self.get(task_id)
            if verdict is not None:
                found[task_id] = verdict
        return found

    @abstractmethod
    def put(self, verdict: Verdict, integrations: Iterable[str] = ()) -> tuple[Verdict, bool]:
        """Store ``verdict`` unless one exists; return the stored verdict and whether it is new."""

    @abstractmethod
    def recent(self, limit: int = 20) -> list[Verdict]: ...

    def close(self) -> None:  # noqa: B027 - optional
        pass


_PUT_SCRIPT = """
-- KEYS: verdict, verdicts index, outbox, pending, pending_due, then one delivery hash per integration
-- ARGV: verdict json, ttl seconds, now, task id, then (delivery id, integration) pairs
redis.call('HDEL', KEYS[4], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return redis.call('GET', KEYS[1])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local n = 0
for i = 5, #ARGV, 2 do
  n = n + 1
  local dkey = KEYS[5 + n]
  redis.call('HSET', dkey, 'task_id', ARGV[4], 'integration', ARGV[i + 1], 'attempt', 0,
             'created_at', ARGV[3], 'status', 'pending')
  redis.call('EXPIRE', dkey, ARGV[2])
  redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[i])
end
return false
"""


class RedisVerdictStore(VerdictStore):
    """Verdicts and the delivery outbox in Redis (run it with AOF and ``noeviction``)."""

    def __init__(self, client: Any, ttl_s: int = 30 * 86400, index_limit: int = 100_000) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self.index_limit = index_limit
        self._put = client.register_script(_PUT_SCRIPT)

    def get(self, task_id: str) -> Verdict | None:
        raw = self.redis.get(Keys.verdict(task_id))
        return Verdict.from_json(raw) if raw else None

    def get_many(self, task_ids: list[str]) -> dict[str, Verdict]:
        found: dict[str, Verdict] = {}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start:start + 500]
            for task_id, raw in zip(chunk, self.redis.mget([Keys.verdict(t) for t in chunk])):
                if raw:
                    found[task_id] = Verdict.from_json(raw)
        return found

    def put(self, verdict: Verdict, integrations: Iterable[str] = ()) -> tuple[Verdict, bool]:
        names = list(dict.fromkeys(integrations))
        ids = [delivery_id(name, verdict.task_id) for name in names]
        keys = [Keys.verdict(verdict.task_id), Keys.verdicts, Keys.outbox, Keys.pending, Keys.pending_due,
                *(Keys.delivery(d) for d in ids)]
        args: list[Any] = [verdict.to_json(), self.ttl_s, time.time(), verdict.task_id]
        for d, name in zip(ids, names):
            args += [d, name]
        existing = self._put(keys=keys, args=args)
        if existing:
            return Verdict.from_json(existing), False
        if self.index_limit and self.redis.zcard(Keys.verdicts) > self.index_limit * 1.1:
            self.redis.zremrangebyrank(Keys.verdicts, 0, -self.index_limit - 1)
        return verdict, True

    def recent(self, limit: int = 20) -> list[Verdict]:
        ids = self.redis.zrevrange(Keys.verdicts, 0, limit - 1)
        if not ids:
            return []
        raws = self.redis.mget([Keys.verdict(i.decode() if isinstance(i, bytes) else i) for i in ids])
        return [Verdict.from_json(r) for r in raws if r]

    def close(self) -> None:
        self.redis.close()


class JsonlVerdictStore(VerdictStore):
    """Verdicts appended to a JSON-lines file; safe across threads and processes (flock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._lock = threading.Lock()
        self._index: OrderedDict[str, Verdict] = OrderedDict()
        self._offset = 0

    def _refresh(self, fh: Any) -> None:
        """Read lines appended since the last look (by any process)."""
        fh.seek(self._offset)
        for line in fh:
            if not line.endswith("\n"):
                break  # a partial line being written without the lock: read it next time
            self._offset += len(line.encode())
            line = line.strip()
            if line:
                try:
                    verdict = Verdict.from_json(line)
                except ValueError:
                    continue
                self._index.setdefault(verdict.task_id, verdict)

    def get(self, task_id: str) -> Verdict | None:
        with self._lock, open(self.path, encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            self._refresh(fh)
            return self._index.get(task_id)

    def put(self, verdict: Verdict, integrations: Iterable[str] = ()) -> tuple[Verdict, bool]:
        with self._lock, open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            self._refresh(fh)
            existing = self._index.get(verdict.task_id)
            if existing is not None:
                return existing, False
            fh.seek(0, os.SEEK_END)
            fh.write(verdict.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            self._refresh(fh)
            return verdict, True

    def recent(self, limit: int = 20) -> list[Verdict]:
        with self._lock, open(self.path, encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            self._refresh(fh)
            return list(self._index.values())[-limit:][::-1]


def dumps(verdicts: Iterable[Verdict]) -> str:
    return "\n".join(v.to_json() for v in verdicts)
