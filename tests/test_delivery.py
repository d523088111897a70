"""The deliverer against real Redis and a real HTTP receiver on loopback (in-process deliverer).

Verdicts are written the way scoring workers write them (``RedisVerdictStore.put``: verdict plus
outbox entries in one script); the receiver verifies every signature with synthspot's helper and
with ``standardwebhooks``. Retry schedules are compressed (tenths of seconds).
"""
from __future__ import annotations

import logging
import threading
import time

import pytest

from receiver import Receiver, Reply
from synthspot.cli import build_parser, main
from synthspot.integrations.signing import generate_secret
from synthspot.integrations.webhook import message_id, webhook_body
from synthspot.worker import metrics
from synthspot.worker.contract import ImageRef, Verdict
from synthspot.worker.deliver import Deliverer
from synthspot.worker.logs import TaskIdFilter
from synthspot.worker.outbox import Outbox, connect
from synthspot.worker.settings import Settings
from synthspot.worker.store import Keys, RedisVerdictStore

SECRET = generate_secret()
FAST = (0, 0.2, 0.4, 0.8)


def verdict(task_id: str, label: str = "synthetic") -> Verdict:
    return Verdict(task_id=task_id, image=ImageRef(url=f"s3://uploads/{task_id}.png"), status="scored",
                   label=label, score=0.97 if label == "synthetic" else 0.1, worker="test")


def hook(name: str, url: str, **extra) -> dict:
    return {"name": name, "type": "webhook", "url": url, "secrets": [SECRET], **extra}


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def redis_client(redis_server):
    client = connect(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def store(redis_client):
    return RedisVerdictStore(redis_client)


@pytest.fixture
def deliverer(redis_server):
    """Start an in-process deliverer for given integrations; stopped (SIGTERM-style) at teardown."""
    running: list[tuple[Deliverer, threading.Thread]] = []

    def start(integrations: list[dict], schedule=FAST, lease_s: int = 30, **kw) -> Deliverer:
        settings = Settings(redis_url=redis_server.url, integrations=integrations, retry_schedule_s=list(schedule),
                            delivery_lease_s=lease_s, deliver_metrics_port=0, **kw)
        d = Deliverer(settings)
        thread = threading.Thread(target=d.run, daemon=True)
        thread.start()
        running.append((d, thread))
        return d

    yield start
    for d, thread in running:
        d.stop()
        thread.join(30)
        assert not thread.is_alive()


def dlq(*argv: str) -> int:
    """``synthspot dlq ...`` through the real parser and command, in this process (the console script
    itself runs in test_webhooks_e2e.py)."""
    args = build_parser().parse_args(["dlq", *argv])
    return args._module.run(args)


def delivery_hash(client, integration: str, task_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(Keys.delivery(f"{integration}/{task_id}")).items()}


def test_a_verdict_is_delivered_signed(receiver, store, redis_client, deliverer):
    url = receiver.endpoint("/platform", [SECRET])
    before = sample("synthspot_deliveries_total", integration="platform", status="delivered")
    v, created = store.put(verdict("t-ok"), ["platform"])
    assert created and redis_client.zcard(Keys.outbox) == 1  # stored (and queued) before any attempt
    deliverer([hook("platform", url)])
    receiver.wait_for(lambda: receiver.events("/platform"), what="delivery")
    [req] = receiver.requests("/platform")
    assert req.verified and req.verified_sw and req.status == 200
    assert req.webhook_id == message_id("t-ok")
    assert req.body == webhook_body(v) and req.json()["data"]["task_id"] == "t-ok"
    assert req.headers["content-type"] == "application/json"
    deadline = time.monotonic() + 10
    while redis_client.zcard(Keys.outbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.zcard(Keys.outbox) == 0
    h = delivery_hash(redis_client, "platform", "t-ok")
    assert (h["status"], h["attempt"], h["last_status"]) == ("delivered", "1", "200")
    assert sample("synthspot_deliveries_total", integration="platform", status="delivered") == before + 1


def test_server_errors_are_retried_on_the_schedule_with_one_webhook_id(receiver, store, redis_client, deliverer):
    url = receiver.endpoint("/platform", [SECRET], Reply(500), Reply(500))
    retries = sample("synthspot_deliveries_total", integration="platform", status="retry")
    store.put(verdict("t-flaky"), ["platform"])
    deliverer([hook("platform", url)])
    receiver.wait_for(lambda: receiver.events("/platform"), what="delivery after two 500s")
    reqs = receiver.requests("/platform")
    assert [r.status for r in reqs] == [500, 500, 200]
    assert {r.webhook_id for r in reqs} == {message_id("t-flaky")}  # stable across retries
    assert len({r.body for r in reqs}) == 1 and all(r.verified and r.verified_sw for r in reqs)
    gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
    assert gaps[0] >= 0.2 * 0.8 - 0.02 and gaps[1] >= 0.4 * 0.8 - 0.02  # schedule[1], schedule[2], jittered
    assert sample("synthspot_deliveries_total", integration="platform", status="retry") == retries + 2
    time.sleep(0.2)
    assert delivery_hash(redis_client, "platform", "t-flaky")["attempt"] == "3"


def test_retry_after_is_honoured_for_throttling_only(receiver, store, deliverer):
    url = receiver.endpoint("/platform", [SECRET], Reply(503, {"Retry-After": "2"}), Reply(429, {"Retry-After": "1"}),
                            Reply(500, {"Retry-After": "30"}))
    store.put(verdict("t-throttled"), ["platform"])
    deliverer([hook("platform", url)], schedule=(0, 0.1, 0.1, 0.1, 0.1))
    receiver.wait_for(lambda: receiver.events("/platform"), timeout=30, what="delivery after throttling")
    reqs = receiver.requests("/platform")
    assert [r.status for r in reqs] == [503, 429, 500, 200]
    gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
    assert gaps[0] >= 1.95 and gaps[1] >= 0.95  # Retry-After, not the 0.1 s schedule
    assert gaps[2] < 5  # a 500's Retry-After is not a throttling answer: the schedule applies


def test_timeouts_are_retried(receiver, store, redis_client, deliverer):
    url = receiver.endpoint("/platform", [SECRET], Reply(200, delay_s=2.0))
    store.put(verdict("t-slow"), ["platform"])
    deliverer([hook("platform", url, timeout_s=0.5)])
    receiver.wait_for(lambda: len(receiver.requests("/platform")) >= 2, what="a second attempt after a timeout")
    reqs = receiver.requests("/platform")
    assert reqs[1].webhook_id == reqs[0].webhook_id
    deadline = time.monotonic() + 10
    while delivery_hash(redis_client, "platform", "t-slow")["status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    h = delivery_hash(redis_client, "platform", "t-slow")
    # had the 0.5 s timeout not cut the first attempt, its (late) 200 would have made it attempt 1
    assert h["status"] == "delivered" and h["attempt"] == "2"
    # the receiver acted once although the first (late) answer was also a 200: dedupe on webhook-id
    time.sleep(2.0)
    assert len(receiver.events("/platform")) == 1


def test_redirects_are_not_followed(receiver, store, deliverer):
    elsewhere = receiver.endpoint("/elsewhere")
    url = receiver.endpoint("/platform", [SECRET], Reply(307, {"Location": elsewhere}))
    store.put(verdict("t-moved"), ["platform"])
    deliverer([hook("platform", url)])
    receiver.wait_for(lambda: receiver.events("/platform"), what="delivery after a redirect")
    assert [r.status for r in receiver.requests("/platform")] == [307, 200]
    assert receiver.requests("/elsewhere") == []


def test_410_disables_the_integration_until_replay(receiver, store, redis_client, deliverer, caplog):
    caplog.set_level(logging.INFO, logger="synthspot.worker.deliver")
    caplog.handler.addFilter(TaskIdFilter())
    gone = receiver.endpoint("/gone", [SECRET], Reply(410))
    other = receiver.endpoint("/other", [SECRET])
    d = deliverer([hook("gone", gone), hook("other", other)])
    store.put(verdict("t-1"), ["gone", "other"])
    receiver.wait_for(lambda: receiver.requests("/gone") and receiver.events("/other"), what="first deliveries")
    outbox = d.outbox
    deadline = time.monotonic() + 10
    while "gone" not in outbox.disabled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(outbox.disabled()) == {"gone"}
    [error] = [r for r in caplog.records if "410" in r.getMessage()]
    assert error.levelname == "ERROR" and error.integration == "gone" and error.task_id == "t-1"
    d.update_gauges()
    assert sample("synthspot_integration_disabled", integration="gone") == 1
    assert sample("synthspot_integration_disabled", integration="other") == 0

    # later verdicts never reach the gone endpoint: they wait in the dead-letter store
    store.put(verdict("t-2"), ["gone", "other"])
    receiver.wait_for(lambda: len(receiver.events("/other")) == 2, what="the other integration's second delivery")
    time.sleep(0.5)
    assert len(receiver.requests("/gone")) == 1
    letters = {x.task_id: x for x in outbox.dead_letters(integration="gone")}
    assert letters["t-1"].reason == "gone_410" and letters["t-1"].last_status == "410"
    assert letters["t-2"].reason == "integration_disabled" and letters["t-2"].attempts == 0
    assert sample("synthspot_deliveries_total", integration="gone", status="disabled") >= 2

    # the platform fixed its endpoint: replay re-enables it and delivers both
    assert outbox.replay(integration="gone") == {"replayed": 2, "not_found": 0, "expired": 0}
    assert outbox.disabled() == {}
    receiver.wait_for(lambda: len(receiver.events("/gone")) == 2, what="replayed deliveries")
    assert all(r.verified and r.verified_sw for r in receiver.requests("/gone"))


def test_exhausted_deliveries_are_dead_lettered_and_replayed_by_the_cli(receiver, store, redis_server, deliverer,
                                                                       monkeypatch, capsys):
    url = receiver.endpoint("/platform", [SECRET], default=Reply(500))
    d = deliverer([hook("platform", url)], schedule=(0, 0.1, 0.1))
    store.put(verdict("t-dead"), ["platform"])
    deadline = time.monotonic() + 20
    while not d.outbox.dead_letters() and time.monotonic() < deadline:
        time.sleep(0.05)
    [letter] = d.outbox.dead_letters()
    assert (letter.id, letter.reason, letter.attempts, letter.last_status) == (
        "platform/t-dead", "attempts_exhausted", 3, "500")
    assert len(receiver.requests("/platform")) == 3
    d.update_gauges()
    assert sample("synthspot_dead_letter_size") == 1 and sample("synthspot_outbox_size") == 0

    monkeypatch.setenv("SYNTHSPOT_REDIS_URL", redis_server.url)
    assert dlq("list") == 0
    listed = capsys.readouterr().out
    assert "platform/t-dead" in listed and "attempts_exhausted" in listed
    receiver.script("/platform", default=Reply(200))
    assert dlq("replay", "platform/t-dead", "platform/missing") == 1  # one id was unknown
    assert "replayed 1, 1 not found" in capsys.readouterr().out
    receiver.wait_for(lambda: receiver.events("/platform"), what="replayed delivery")
    assert d.outbox.dead_letters() == []


def test_an_expired_lease_makes_the_delivery_due_again(store, redis_client):
    store.put(verdict("t-lease"), ["platform"])
    dead_deliverer = Outbox(redis_client, schedule=FAST, lease_s=0.5, owner="dead")
    survivor = Outbox(redis_client, schedule=FAST, lease_s=0.5, owner="alive")
    [claim] = dead_deliverer.claim(10)
    assert claim.delivery.attempt == 1 and survivor.claim(10) == []
    assert delivery_hash(redis_client, "platform", "t-lease")["claimed_by"] == "dead"
    time.sleep(0.6)
    [again] = survivor.claim(10)
    assert again.delivery.id == claim.delivery.id and again.delivery.attempt == 2
    assert not dead_deliverer.complete(claim, 200)  # the late deliverer no longer holds it
    assert survivor.complete(again, 200)
    assert redis_client.zcard(Keys.outbox) == 0


def test_scoring_never_waits_for_an_endpoint(receiver, store, deliverer):
    url = receiver.endpoint("/platform", [SECRET], default=Reply(200, delay_s=3))
    deliverer([hook("platform", url, timeout_s=1)], delivery_concurrency=2)
    started = time.perf_counter()
    for i in range(30):
        store.put(verdict(f"t-{i}"), ["platform"])
    assert time.perf_counter() - started < 2.0  # the worker's write is the outbox, not the HTTP call
    receiver.wait_for(lambda: len(receiver.requests("/platform")) >= 2, what="attempts in flight")


def test_deliveries_for_unconfigured_or_disabled_integrations_are_kept(store, deliverer, receiver):
    url = receiver.endpoint("/platform", [SECRET])
    d = deliverer([hook("platform", url), hook("paused", url, enabled=False)])
    store.put(verdict("t-x"), ["removed", "paused"])
    deadline = time.monotonic() + 10
    while len(d.outbox.dead_letters()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    reasons = {x.integration: (x.reason, x.attempts) for x in d.outbox.dead_letters()}
    assert reasons == {"removed": ("integration_not_configured", 0), "paused": ("integration_not_enabled", 0)}
    assert receiver.requests() == []


@pytest.mark.parametrize("integration,expected", [
    ({"timeout_s": 999}, "integrations.0.timeout_s"),
    ({"secrets": ["whsec_short-and-secret"]}, "a webhook secret is whsec_ followed by base64"),
    ({"secrets": []}, "needs a signing secret"),
    ({"type": "carrier-pigeon"}, "unknown integration type 'carrier-pigeon'; registered:"),
])
def test_bad_integrations_fail_at_start_without_echoing_secrets(integration, expected, monkeypatch, capsys):
    import json

    config = {"name": "p", "type": "webhook", "url": "https://x.example/secret-path", "secrets": [SECRET],
              **integration}
    monkeypatch.setenv("SYNTHSPOT_REDIS_URL", "redis://:redis-password@127.0.0.1:1/0")
    monkeypatch.setenv("SYNTHSPOT_INTEGRATIONS", json.dumps([config]))
    assert main(["deliver"]) == 2
    err = capsys.readouterr().err
    assert expected in err
    for secret in ("secret-path", "short-and-secret", SECRET, "redis-password"):
        assert secret not in err
