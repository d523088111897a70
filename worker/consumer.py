"""Celery's worker consumer, made to survive a broker restart while checks are in flight.

Celery 5.7 handles a lost broker connection by ``collect()``-ing it, which detaches its transport,
and then ``close()``-ing it. When the loss is first seen on the pub/sub socket (remote control)
while a ``BRPOP`` is in flight, the first close of the task channel stops at the dead ``BRPOP``
socket; the second close then restores the channel's unacknowledged checks through the detached
transport and raises ``AttributeError`` ('NoneType' object has no attribute 'hostname'), which
Celery treats as unrecoverable: the worker exits on every such Redis restart (found by the chaos
run, bench/chaos.py; reproduced by tests/test_chaos.py).

Celery before 5.7 only collected the connection, and nothing is left to close after that:
``collect()`` already closed what it could. So a collected connection is not closed twice
here. The task channel whose close was cut short keeps its Redis pool, so the checks still running
on it store their verdicts and are acknowledged once Redis is back; a check whose ack fails while
Redis is down stays in kombu's unacked set and the visibility timeout redelivers it (verdicts are
deduplicated). Nothing is lost either way; the point is that a Redis restart no longer takes
scoring capacity down.
"""
from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_unless_collected(*args: Any, **kwargs: Any) -> None:
                if getattr(connection, "_transport", True) is None:  # collect() detached it: closed already
                    log.debug("broker connection lost: the collected connection is not closed twice")
                    return
                close(*args, **kwargs)

            connection.close = close_unless_collected  # Celery calls ignore_errors(connection, connection.close)
        super().on_connection_error_after_connected(exc)
