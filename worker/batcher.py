"""Batching across tasks: many checks, one forward pass.

Each check runs in its own worker thread (fetch and decode in parallel), then hands its
prepared views to the ``Batcher`` and waits on a future. One inference thread collects items
until ``max_batch`` images are waiting or ``max_wait_s`` has passed since the first one, scores
them in one call, and resolves every future. A failing forward pass fails every future of that
batch, and each check retries on its own: no check is acknowledged without its own verdict.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(RuntimeError):
    pass


class Batcher(Generic[T, R]):
    """Collects items from many threads and runs ``fn`` on lists of them in one thread."""

    def __init__(self, fn: Callable[[Sequence[T]], Sequence[R]], *, max_batch: int, max_wait_s: float,
                 on_batch: Callable[[int, float], None] | None = None, name: str = "synthspot-batcher") -> None:
        self.fn = fn
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.on_batch = on_batch
        self._queue: queue.Queue[tuple[T, Future[R]] | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        if self._closed:
            raise BatcherClosed("the batcher is shut down")
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future

    def close(self, timeout: float | None = 30.0) -> None:
        """Score what is queued, then stop."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    def _collect(self) -> tuple[list[tuple[T, Future[R]]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        stop = False
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._collect()
            if not batch:
                continue
            items = [item for item, _ in batch]
            futures = [f for _, f in batch if f.set_running_or_notify_cancel()]
            start = time.perf_counter()
            try:
                results = self.fn(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            except BaseException as exc:  # noqa: BLE001 - every waiting check must hear about it
                log.exception("batch of %d failed", len(items))
                for f in futures:
                    f.set_exception(exc)
                continue
            finally:
                if self.on_batch:
                    self.on_batch(len(items), time.perf_counter() - start)
            for (_, f), result in zip(batch, results):
                if f in futures:
                    f.set_result(result)
        # drain anything submitted after close so nobody waits forever
        while True:
            try:
                leftover = self._queue.get_nowait()
            except queue.Empty:
                break
            if leftover is not None:
                leftover[1].set_exception(BatcherClosed("the batcher shut down"))
