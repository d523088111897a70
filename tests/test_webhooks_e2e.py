"""End to end: real Redis (AOF), real `synthspot deliver` processes, a real HTTP receiver on loopback.

Verdicts are written the way scoring workers write them: ``Runtime.route`` picks the integrations
from each verdict's label, ``RedisVerdictStore.put`` stores verdict and deliveries in one script.
"""
from __future__ import annotations

import json
import subprocess
import textwrap
import time

import pytest

from conftest import synthspot_cmd
from helpers import free_port
from receiver import DelivererProcess, Receiver, Reply
from synthspot.integrations.signing import generate_secret
from synthspot.integrations.webhook import message_id
from synthspot.worker.contract import ErrorInfo, ImageRef, Verdict
from synthspot.worker.outbox import Outbox, connect
from synthspot.worker.settings import Settings
from synthspot.worker.store import Keys, RedisVerdictStore

SECRET_OLD = generate_secret()
SECRET_NEW = generate_secret()
SLACK_PATH = "/services/T0000/B0000/slack-url-secret-part"

PLUGIN = '''
"""A platform's own integration type, shipped in its own package (no synthspot fork)."""
import json
import httpx
from synthspot.integrations.registry import DeliveryResult, Notifier

class AcmeNotifier(Notifier):
    def deliver(self, verdict, delivery):
        doc = {"ticket": verdict.task_id, "severity": self.spec.options["severity"][verdict.label]}
        r = httpx.post(self.spec.url, content=json.dumps(doc), timeout=self.spec.timeout_s)
        return DeliveryResult("delivered" if r.is_success else "retry", r.status_code)
'''


def verdict(task_id: str, label: str, requested: list[str] | None = None) -> Verdict:
    if label == "error":
        return Verdict(task_id=task_id, image=ImageRef(url=f"s3://uploads/{task_id}.png"), status="error",
                       label="error", score=None, worker="test", integrations=requested,
                       error=ErrorInfo(reason="not_an_image", message="cannot decode"))
    score = {"synthetic": 0.97, "review": 0.4, "real": 0.02}[label]
    return Verdict(task_id=task_id, image=ImageRef(url=f"s3://uploads/{task_id}.png"), status="scored",
                   label=label, score=score, worker="test", integrations=requested)


def env_for(redis_url: str, tmp_path, integrations: list[dict], schedule, **extra: str) -> dict[str, str]:
    return {"SYNTHSPOT_REDIS_URL": redis_url, "SYNTHSPOT_STATE_DIR": str(tmp_path / "state"),
            "SYNTHSPOT_INTEGRATIONS": json.dumps(integrations), "SYNTHSPOT_RETRY_SCHEDULE_S": json.dumps(schedule),
            "SYNTHSPOT_DELIVER_METRICS_PORT": str(free_port()), "SYNTHSPOT_METRICS_HOST": "127.0.0.1",
            "SYNTHSPOT_LOG_LEVEL": "INFO", **extra}


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def processes():
    started: list[DelivererProcess] = []

    def start(env: dict[str, str], log_path) -> DelivererProcess:
        proc = DelivererProcess(env, log_path).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_routing_signing_slack_and_a_plugin(receiver, redis_server, processes, tmp_path):
    from synthspot.worker.runtime import Runtime  # the router scoring workers use (imports the detector lazily)

    plugin_dir = tmp_path / "plugin"
    (plugin_dir / "acme_synthspot-1.0.dist-info").mkdir(parents=True)
    (plugin_dir / "acme_synthspot.py").write_text(textwrap.dedent(PLUGIN))
    (plugin_dir / "acme_synthspot-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-synthspot\nVersion: 1.0\n")
    (plugin_dir / "acme_synthspot-1.0.dist-info" / "entry_points.txt").write_text(
        "[synthspot.integrations]\nacme = acme_synthspot:AcmeNotifier\n")

    integrations = [
        # the receiver holds only the new secret: synthspot signs with both during the rotation
        {"name": "platform", "type": "webhook", "url": receiver.endpoint("/platform", [SECRET_NEW]),
         "secrets": [SECRET_NEW, SECRET_OLD]},
        {"name": "slack", "type": "slack", "url": receiver.endpoint(SLACK_PATH), "labels": ["synthetic", "review"],
         "min_interval_s": 0.05},
        {"name": "acme", "type": "acme", "url": receiver.endpoint("/acme"), "labels": ["synthetic"],
         "severity": {"synthetic": "high"}},
    ]
    settings = Settings(redis_url=redis_server.url, integrations=integrations)
    router = Runtime(settings)
    store = RedisVerdictStore(connect(redis_server.url))
    checks = [("t-synthetic", "synthetic", None), ("t-review", "review", None), ("t-real", "real", None),
              ("t-error", "error", None), ("t-narrowed", "synthetic", ["platform"])]
    for task_id, label, requested in checks:
        store.put(verdict(task_id, label, requested), router.route(label, requested))

    env = env_for(redis_server.url, tmp_path, integrations, [0, 0.2, 0.4], PYTHONPATH=str(plugin_dir))
    deliverer = processes(env, tmp_path / "deliver.log")
    deliverer.wait_ready()
    receiver.wait_for(lambda: len(receiver.events("/platform")) == 5 and len(receiver.events(SLACK_PATH)) == 2
                      and len(receiver.events("/acme")) == 1, timeout=60, what="all routed deliveries")

    platform = receiver.requests("/platform")
    assert all(r.verified and r.verified_sw for r in platform)
    assert {r.webhook_id for r in platform} == {message_id(t) for t, _, _ in checks}
    assert {r.json()["data"]["label"] for r in platform} == {"synthetic", "review", "real", "error"}
    slack = [r.json() for r in receiver.requests(SLACK_PATH)]
    assert sorted(m["blocks"][0]["text"]["text"] for m in slack) == ["synthspot: review", "synthspot: synthetic"]
    assert any("t-review" in json.dumps(m["blocks"]) and "s3://uploads/t-review.png" in json.dumps(m["blocks"])
               for m in slack)
    assert [r.json() for r in receiver.requests("/acme")] == [{"ticket": "t-synthetic", "severity": "high"}]

    time.sleep(2.5)  # one gauge refresh
    assert deliverer.metric("synthspot_deliveries_total", integration="platform", status="delivered") == 5
    assert deliverer.metric("synthspot_deliveries_total", integration="slack", status="delivered") == 2
    assert deliverer.metric("synthspot_delivery_attempts_total", integration="acme") == 1
    assert deliverer.metric("synthspot_outbox_size") == 0
    assert deliverer.stop() == 0  # SIGTERM: a clean exit
    records = deliverer.log_records()
    delivered = [r for r in records if r["msg"] == "delivered"]
    assert {r["task_id"] for r in delivered} >= {"t-synthetic", "t-review", "t-real", "t-error", "t-narrowed"}
    log_text = deliverer.log()
    for secret in (SECRET_NEW, SECRET_OLD, SECRET_NEW[6:], "slack-url-secret-part"):
        assert secret not in log_text


def test_failures_retries_410_and_dead_letter_replay(receiver, redis_server, processes, tmp_path):
    names = ("flaky", "throttled", "slow", "gone", "broken")
    integrations = [{"name": n, "type": "webhook", "url": receiver.endpoint(f"/{n}", [SECRET_NEW]),
                     "secrets": [SECRET_NEW], **({"timeout_s": 0.5} if n == "slow" else {})} for n in names]
    receiver.script("/flaky", Reply(500), Reply(502))
    receiver.script("/throttled", Reply(429, {"Retry-After": "1"}))
    receiver.script("/slow", Reply(200, delay_s=2))
    receiver.script("/gone", default=Reply(410))
    receiver.script("/broken", default=Reply(500))
    store = RedisVerdictStore(connect(redis_server.url))
    store.put(verdict("t-1", "synthetic"), names)
    env = env_for(redis_server.url, tmp_path, integrations, [0, 0.2, 0.4])
    deliverer = processes(env, tmp_path / "deliver.log")
    outbox = Outbox(connect(redis_server.url), schedule=[0], lease_s=5)
    wait_until(lambda: len(outbox.dead_letters()) == 2 and all(receiver.events(f"/{n}") for n in names[:3]),
               60, "three deliveries and two dead letters")

    assert [r.status for r in receiver.requests("/flaky")] == [500, 502, 200]
    throttled = receiver.requests("/throttled")
    assert throttled[1].at - throttled[0].at >= 0.95
    assert len(receiver.requests("/slow")) == 2  # timed out once, then delivered
    assert len(receiver.requests("/broken")) == 3 and len(receiver.requests("/gone")) == 1
    letters = {x.integration: x for x in outbox.dead_letters()}
    assert (letters["broken"].reason, letters["gone"].reason) == ("attempts_exhausted", "gone_410")
    assert set(outbox.disabled()) == {"gone"}
    time.sleep(2.5)
    assert deliverer.metric("synthspot_integration_disabled", integration="gone") == 1
    assert deliverer.metric("synthspot_dead_letter_size") == 2
    assert deliverer.metric("synthspot_deliveries_total", integration="broken", status="dead_letter") == 1
    assert any(r["level"] == "error" and r.get("integration") == "gone" and "410" in r["msg"]
               for r in deliverer.log_records())

    # both endpoints are fixed; the operator replays everything with the console script
    receiver.script("/gone", default=Reply(200))
    receiver.script("/broken", default=Reply(200))
    replay = subprocess.run(synthspot_cmd("dlq", "replay", "--all"), env={**deliverer.env}, capture_output=True,
                            text=True, timeout=120)
    assert replay.returncode == 0 and "replayed 2" in replay.stdout, replay.stderr
    receiver.wait_for(lambda: receiver.events("/gone") and receiver.events("/broken"), timeout=30,
                      what="replayed deliveries")
    assert outbox.dead_letters() == [] and outbox.disabled() == {}
    assert {r.webhook_id for r in receiver.requests("/broken")} == {message_id("t-1")}


def test_redis_restart_mid_delivery_loses_nothing(receiver, redis_server, processes, tmp_path):
    url = receiver.endpoint("/platform", [SECRET_NEW], *[Reply(500)] * 10)
    integrations = [{"name": "platform", "type": "webhook", "url": url, "secrets": [SECRET_NEW]}]
    store = RedisVerdictStore(connect(redis_server.url))
    for i in range(10):
        store.put(verdict(f"before-{i}", "synthetic"), ["platform"])
    env = env_for(redis_server.url, tmp_path, integrations, [0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    deliverer = processes(env, tmp_path / "deliver.log")
    receiver.wait_for(lambda: len(receiver.requests("/platform")) >= 10, timeout=60, what="first attempts")

    redis_server.stop(hard=True)  # SIGKILL: only what AOF already holds survives
    time.sleep(1.5)
    redis_server.start()
    store = RedisVerdictStore(connect(redis_server.url))
    for i in range(10):
        store.put(verdict(f"after-{i}", "synthetic"), ["platform"])
    expected = {message_id(f"{p}-{i}") for p in ("before", "after") for i in range(10)}
    receiver.wait_for(lambda: set(receiver.events("/platform")) == expected, timeout=90,
                      what="all 20 verdicts delivered across the restart")
    assert deliverer.proc.poll() is None  # the deliverer rode out the restart
    client = connect(redis_server.url)
    wait_until(lambda: client.zcard(Keys.outbox) == 0, 15, "an empty outbox")
    assert client.zcard(Keys.deadletter) == 0
    attempts = int(client.hget(Keys.delivery("platform/before-0"), "attempt"))
    assert attempts >= 2  # the failed first attempt was remembered across the restart
    assert all(r.verified and r.verified_sw for r in receiver.requests("/platform"))


def test_a_killed_deliverers_leases_come_back(receiver, redis_server, processes, tmp_path):
    url = receiver.endpoint("/platform", [SECRET_NEW], Reply(200, delay_s=30))
    integrations = [{"name": "platform", "type": "webhook", "url": url, "secrets": [SECRET_NEW], "timeout_s": 20}]
    RedisVerdictStore(connect(redis_server.url)).put(verdict("t-crash", "synthetic"), ["platform"])
    env = env_for(redis_server.url, tmp_path, integrations, [0, 0.2], SYNTHSPOT_DELIVERY_LEASE_S="5")
    first = processes(env, tmp_path / "first.log")
    receiver.wait_for(lambda: receiver.requests("/platform"), timeout=60, what="the first attempt")
    first.kill()  # SIGKILL mid-attempt: nothing recorded, the lease just runs out
    second = processes({**env, "SYNTHSPOT_DELIVER_METRICS_PORT": str(free_port())}, tmp_path / "second.log")
    receiver.wait_for(lambda: receiver.events("/platform"), timeout=60, what="delivery by the second deliverer")
    reqs = receiver.requests("/platform")
    assert len(reqs) == 2 and reqs[1].webhook_id == reqs[0].webhook_id
    assert reqs[1].at - reqs[0].at >= 3.5  # not before the 5 s lease (taken just before the first request) ran out
    client = connect(redis_server.url)
    wait_until(lambda: client.hget(Keys.delivery("platform/t-crash"), "status") == b"delivered", 10, "delivered")
    assert client.hget(Keys.delivery("platform/t-crash"), "attempt") == b"2"
    assert second.proc.poll() is None
