"""Threats to the scoring service, each tried for real against real processes.

One hostile run (``hostile`` fixture) drives a real ``synthspot worker`` and ``synthspot deliver``
over a real Redis that wants a password and speaks TLS only, with a real S3 server and a real
webhook receiver, and throws at it: messages in pickle and YAML carrying code, JSON that looks
like code, malformed checks (unknown fields, wrong types, a 1 MB task id, a 1 MB field name,
oversized and deeply nested metadata, NaN, lone surrogates), a bucket outside the allowlist,
failing deliveries and a Redis restart. The tests below then read what came out: verdicts,
logs, metrics, the Redis append-only file and every request the receiver got.

Elsewhere: a benign pickled check is refused (test_worker_e2e.py::
test_pickle_message_is_refused_and_worker_stays_up), pickled code in a weights file is refused by
``weights_only=True`` (test_weights.py::test_pickled_code_is_refused), and the contract refuses
unknown fields, wrong types and oversized strings (test_contract.py).
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import pickle
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import synthspot_cmd
from helpers import encode, free_port, photo
from services import metric_by_label

pytestmark = pytest.mark.timeout(400)

QUEUE = "synthspot.score"
REDIS_PASSWORD = "redis-pw-" + secrets.token_hex(12)
SLACK_TOKEN = secrets.token_hex(12)
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


# --- helpers -----------------------------------------------------------------------------------------

def make_tls(folder: Path, name: str = "synthspot-test-ca") -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: (cert, key, ca) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5), "not_valid_after": now + datetime.timedelta(days=1)}
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, public_key=ca_key.public_key(),
                                  serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder(subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                                    issuer_name=ca_name, public_key=key.public_key(),
                                    serial_number=x509.random_serial_number(), **valid)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


def publish_raw(app, body: bytes, content_type: str, task_id: str, encoding: str = "binary") -> None:
    """A Celery (protocol 2) message whose body is ``body`` as is: what anyone who can write to the broker can send."""
    headers = {"lang": "py", "task": "synthspot.check", "id": task_id, "root_id": task_id, "parent_id": None,
               "group": None, "retries": 0, "eta": None, "expires": None, "timelimit": [None, None],
               "argsrepr": "(...)", "kwargsrepr": "{}", "origin": "attacker"}
    with app.connection_for_write() as conn:
        conn.Producer().publish(body, exchange="", routing_key=QUEUE, content_type=content_type,
                                content_encoding=encoding, headers=headers, correlation_id=task_id)


class Payload:
    """Unpickling this runs a shell command (the classic pickle gadget)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


# --- the hostile run ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory, parity_checkpoint):
    from receiver import DelivererProcess, Receiver, Reply
    from services import SECRET_KEY, RedisServer, S3Server, WorkerProcess
    from synthspot.integrations.signing import generate_secret
    from synthspot.worker.app import create_app
    from synthspot.worker.settings import Settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    root = tmp_path_factory.mktemp("hostile")
    whsec = generate_secret()
    cert, key, ca = make_tls(root / "tls")
    redis = RedisServer(root / "redis", password=REDIS_PASSWORD, tls=(cert, key, ca)).start()
    s3 = S3Server(root / "s3").start()
    receiver = Receiver()
    # the platform's endpoint fails once, then accepts; Slack's URL (the secret) points at a closed port
    platform_url = receiver.endpoint("/platform", [whsec], Reply(500))
    slack_url = f"http://127.0.0.1:{free_port()}/services/T000/B000/{SLACK_TOKEN}"
    integrations = [{"name": "platform", "type": "webhook", "url": platform_url, "secrets": [whsec]},
                    {"name": "slack", "type": "slack", "url": slack_url, "min_interval_s": 0.05}]
    env = {"SYNTHSPOT_REDIS_URL": redis.url, "SYNTHSPOT_REDIS_TLS_CA_FILE": str(ca), **s3.env(),
           "SYNTHSPOT_S3_ALLOWED_BUCKETS": "uploads", "SYNTHSPOT_WEIGHTS": str(parity_checkpoint),
           "SYNTHSPOT_BATCH_SIZE": "4", "SYNTHSPOT_BATCH_WAIT_MS": "50", "SYNTHSPOT_DEVICE": "cpu",
           "SYNTHSPOT_METRICS_PORT": str(free_port()), "SYNTHSPOT_DELIVER_METRICS_PORT": str(free_port()),
           "SYNTHSPOT_METRICS_HOST": "127.0.0.1", "SYNTHSPOT_STATE_DIR": str(root / "state"),
           "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2", "SYNTHSPOT_INTEGRATIONS": json.dumps(integrations),
           "SYNTHSPOT_RETRY_SCHEDULE_S": "[0, 0.2, 0.4]", "SYNTHSPOT_LOG_LEVEL": "INFO"}
    worker = WorkerProcess(env, root / "worker.log").start()
    deliverer = DelivererProcess(env, root / "deliver.log").start()
    run: dict = {"secrets": {"redis password": REDIS_PASSWORD, "S3 secret key": SECRET_KEY, "webhook secret": whsec,
                             "webhook secret body": whsec.removeprefix("whsec_"), "Slack URL": slack_url,
                             "Slack URL token": SLACK_TOKEN},
                 "markers": [root / "pwned-pickle", root / "pwned-yaml", root / "pwned-json"], "env": env}
    try:
        client = s3.client()
        for bucket in ("uploads", "forbidden"):
            client.create_bucket(Bucket=bucket)
        good = encode(photo(224, 224, seed=1), "PNG")
        for key in ("good.png", "json-code.png", "after-restart.png"):
            client.put_object(Bucket="uploads", Key=key, Body=good)
        client.put_object(Bucket="forbidden", Key="good.png", Body=good)
        client.put_object(Bucket="uploads", Key="page.png", Body=b"<html><script>alert(1)</script></html>")
        settings = Settings(redis_url=redis.url, redis_tls_ca_file=ca, state_dir=root / "client")
        app = create_app(settings)
        worker.wait_ready()
        deliverer.wait_ready()

        # ordinary checks, good and bad
        checks = {"good": "s3://uploads/good.png", "missing": "s3://uploads/nope.png",
                  "bucket": "s3://forbidden/good.png", "html": "s3://uploads/page.png"}
        send([make_check(url, task_id=tid) for tid, url in checks.items()], app=app)
        # JSON that looks like code is only data: refused as unknown fields, or echoed as metadata
        gadget = {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": [f"touch {run['markers'][2]}"]}],
                  "__reduce__": ["os.system", [f"touch {run['markers'][2]}"]]}
        send([make_check("s3://uploads/json-code.png", task_id="json-code", metadata=gadget)], app=app)
        app.send_task("synthspot.check", args=[{"task_id": "json-reduce", "image": {"url": "s3://uploads/good.png"},
                                                **gadget}], queue=QUEUE)
        # code in other serialisations: refused before anything is deserialised
        publish_raw(app, pickle.dumps(([Payload(run["markers"][0])], {}, EMBED)), "application/x-python-serialize",
                    "pickle-code")
        publish_raw(app, f'- [!!python/object/apply:os.system ["touch {run["markers"][1]}"]]\n- {{}}\n- {{}}\n'
                    .encode(), "application/x-yaml", "yaml-code", encoding="utf-8")
        # malformed checks sent as JSON
        image = {"url": "s3://uploads/good.png"}
        malformed = {
            "inv-metadata-size": {"task_id": "inv-metadata-size", "image": image, "metadata": {"blob": "x" * 10_000}},
            "inv-metadata-huge": {"task_id": "inv-metadata-huge", "image": image, "metadata": {"blob": "x" * 5_000_000}},
            "inv-nested": {"task_id": "inv-nested", "image": image, "metadata": nested(300)},
            "inv-nan": {"task_id": "inv-nan", "image": image, "metadata": {"x": float("nan")}},
            "inv-surrogate": {"task_id": "inv-surrogate", "image": image, "metadata": {"x": "\ud800"}},
            "inv-surrogate-key": {"task_id": "inv-surrogate-key", "image": image, "metadata": {"\udfff" * 300: 1}},
            "inv-big-field": {"task_id": "inv-big-field", "image": image, "f" * 1_000_000: 1},
            "inv-image-list": {"task_id": "inv-image-list", "image": ["s3://uploads/good.png"]},
            "inv-date": {"task_id": "inv-date", "image": image, "submitted_at": "yesterday"},
            "inv-integrations": {"task_id": "inv-integrations", "image": image, "integrations": ["x"] * 1000},
            "inv-url": {"task_id": "inv-url", "image": {"url": "http://169.254.169.254/latest/meta-data/"}},
        }
        for payload in malformed.values():
            app.send_task("synthspot.check", args=[payload], queue=QUEUE)
        # no readable task id: keyed by the Celery message id
        unreadable = {"big-task-id": [{"task_id": "t" * 1_000_000, "image": image}],
                      "two-args": [{"task_id": "inv-two-args", "image": image}, "extra"]}
        for celery_id, args in unreadable.items():
            app.send_task("synthspot.check", args=args, queue=QUEUE, task_id=celery_id)
        app.send_task("synthspot.check", kwargs={"task_id": "inv-kwargs", "image": image, "evil": 1}, queue=QUEUE)
        # too deep for the JSON decoder itself (a RecursionError inside kombu)
        deep = '{"task_id": "inv-deep", "image": {"url": "s3://uploads/good.png"}, "metadata": ' + \
            '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
        publish_raw(app, f"[[{deep}], {{}}, {json.dumps(EMBED)}]".encode(), "application/json", "deep-json",
                    encoding="utf-8")

        expected = [*checks, "json-code", "json-reduce", *malformed, "invalid-big-task-id", "invalid-two-args",
                    "inv-kwargs"]
        verdicts = wait_for_verdicts(expected, settings=settings, timeout_s=150)
        assert set(verdicts) == set(expected), worker.log()[-3000:]

        # Redis goes away and comes back: reconnection errors get logged by both processes
        redis.restart(down_s=1.0)
        send([make_check("s3://uploads/after-restart.png", task_id="after-restart")], app=app)
        verdicts.update(wait_for_verdicts(["after-restart"], settings=settings, timeout_s=120))
        assert "after-restart" in verdicts, worker.log()[-3000:]
        receiver.wait_for(lambda: len(receiver.events("/platform")) >= len(verdicts), timeout=90,
                          what="deliveries to the platform")
        deadline = time.monotonic() + 60
        while deliverer.metric("synthspot_deliveries_total", integration="slack", status="dead_letter") < 1:
            assert time.monotonic() < deadline, deliverer.log()[-3000:]
            time.sleep(0.2)

        cli_env = {**{k: v for k, v in worker.env.items()}}
        run.update(
            verdicts=verdicts, worker_alive=worker.proc.poll() is None, deliverer_alive=deliverer.proc.poll() is None,
            worker_metrics=get_text(f"http://127.0.0.1:{env['SYNTHSPOT_METRICS_PORT']}/metrics"),
            deliver_metrics=deliverer.metrics(),
            cli=[subprocess.run(synthspot_cmd(*args), env=cli_env, capture_output=True, text=True, timeout=120)
                 for args in (("verdicts", "--format", "jsonl", "--limit", "100"), ("dlq", "list", "--format", "jsonl"))],
            requests=receiver.requests(), aof=b"".join(p.read_bytes() for p in (root / "redis").rglob("*.aof")),
            redis_log=(root / "redis" / "redis.log").read_text(errors="replace"))
    finally:
        worker.stop()
        deliverer.stop()
        run["worker_log"] = worker.log()
        run["deliver_log"] = deliverer.log()
        receiver.close()
        s3.stop()
        redis.stop()
    yield run


def nested(depth: int) -> dict:
    doc: dict = {}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


def test_code_in_messages_never_runs_and_the_worker_stays_up(hostile):
    assert hostile["worker_alive"] and hostile["deliverer_alive"]
    for marker in hostile["markers"]:
        assert not marker.exists(), f"{marker.name}: a message ran code"
    log = hostile["worker_log"]
    assert "application/x-python-serialize" in log and "application/x-yaml" in log  # refused, and said so
    v = hostile["verdicts"]
    # JSON is data: gadget-shaped metadata is echoed back unchanged, gadget-shaped fields are unknown fields
    assert v["json-code"].status == "scored" and "py/reduce" in v["json-code"].metadata
    assert v["json-reduce"].error.reason == "invalid_task" and "__reduce__" in v["json-reduce"].error.message
    assert "pickle-code" not in json.dumps([x.task_id for x in v.values()])


def test_malformed_checks_get_short_invalid_task_verdicts(hostile):
    v = hostile["verdicts"]
    invalid = [t for t in v if t.startswith(("inv-", "invalid-"))]
    assert len(invalid) == 14
    for task_id in invalid:
        verdict = v[task_id]
        assert verdict.status == "error" and verdict.error.reason == "invalid_task", (task_id, verdict.error)
        assert len(verdict.error.message) <= 500 and len(verdict.to_json()) < 4000, task_id  # no echo
    assert "nested deeper" in v["inv-nested"].error.message
    assert "plain JSON" in v["inv-nan"].error.message and "plain JSON" in v["inv-surrogate"].error.message
    assert "larger than 8192 bytes" in v["inv-metadata-size"].error.message
    assert v["invalid-big-task-id"].image is not None  # what was readable is kept
    # a message too deep even to decode is refused with a log line; the worker goes on
    assert "inv-deep" not in v and hostile["worker_alive"]
    assert "deep-json" in hostile["worker_log"]
    # nothing oversized is echoed into logs either (log records carry only a contract-valid task id)
    longest = max(hostile["worker_log"].splitlines(), key=len)
    assert len(longest) < 20_000, longest[:300]


def test_bucket_outside_the_allowlist_is_refused(hostile):
    v = hostile["verdicts"]
    assert v["bucket"].error.reason == "bucket_not_allowed"  # the object exists and is a valid image
    assert v["good"].status == "scored" and v["after-restart"].status == "scored"
    assert v["missing"].error.reason == "object_not_found" and v["html"].error.reason == "not_an_image"
    assert v["inv-url"].error.reason == "invalid_task"  # only s3:// references: no fetching of URLs


def test_secrets_never_reach_logs_verdicts_metrics_or_redis(hostile):
    places = {"worker log": hostile["worker_log"], "deliverer log": hostile["deliver_log"],
              "verdicts": "\n".join(v.to_json() for v in hostile["verdicts"].values()),
              "worker /metrics": hostile["worker_metrics"], "deliverer /metrics": hostile["deliver_metrics"],
              "Redis append-only file": hostile["aof"].decode("latin-1"), "redis log": hostile["redis_log"],
              "receiver requests": "\n".join(f"{r.headers} {r.body!r}" for r in hostile["requests"])}
    for proc in hostile["cli"]:
        assert proc.returncode == 0, proc.stderr
        places[f"synthspot {proc.args[1]}"] = proc.stdout + proc.stderr
    # the run did go through the paths that tend to leak: failed deliveries, reconnects, refusals
    assert "slack" in places["deliverer log"] and "dead_letter" in places["deliverer /metrics"]
    assert len(places["synthspot verdicts"].splitlines()) == len(hostile["verdicts"])
    leaks = [f"{what} in {where}" for what, secret in hostile["secrets"].items()
             for where, text in places.items() if secret in text]
    assert not leaks, leaks


def test_redis_tls_certificates_are_verified(tmp_path):
    """Broker (kombu) and store (redis-py) connections over rediss:// check the server certificate."""
    from services import RedisServer
    from synthspot.worker.app import create_app
    from synthspot.worker.redisconn import connect
    from synthspot.worker.settings import Settings

    cert, key, ca = make_tls(tmp_path / "tls")
    *_, other_ca = make_tls(tmp_path / "other", name="someone-else")
    redis = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD, tls=(cert, key, ca)).start()
    try:
        for ca_file, ok in ((ca, True), (other_ca, False), (None, False)):
            app = create_app(Settings(redis_url=redis.url, redis_tls_ca_file=ca_file, state_dir=tmp_path / "s"))
            with app.connection_for_write() as conn:
                if ok:
                    conn.ensure_connection(max_retries=1)
                    assert conn.default_channel.client.ping()
                else:
                    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
                        conn.ensure_connection(max_retries=1)
            client = connect(redis.url, str(ca_file) if ca_file else None, retries=0)
            if ok:
                assert client.ping()
            else:
                with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
                    client.ping()
    finally:
        redis.stop()


# --- weights -------------------------------------------------------------------------------------------

def test_tampered_weights_keep_the_worker_unready_and_checks_waiting(parity_checkpoint, redis_server, s3_server,
                                                                     tmp_path):
    """A weights file whose sha256 no longer matches its record: the worker must not score with it.

    It stays up but not ready (/readyz 503), says why once, and checks wait (retried with
    backoff as ``model_unavailable``) instead of being answered or lost; once the file is right
    again the worker loads it, becomes ready and the waiting check gets its verdict.
    """
    from services import WorkerProcess
    from synthspot.detector.weights import download
    from synthspot.worker.app import create_app
    from synthspot.worker.settings import Settings
    from synthspot.worker.submit import make_check, send, wait_for_verdicts

    weights = tmp_path / "weights" / "model.pth"
    download(parity_checkpoint.as_uri(), weights, progress=False)  # writes model.pth.sha256 beside it
    good = weights.read_bytes()
    with open(weights, "r+b") as fh:  # one flipped byte in the middle of a tensor
        fh.seek(len(good) // 2)
        fh.write(bytes([good[len(good) // 2] ^ 0xFF]))

    client = s3_server.client()
    client.create_bucket(Bucket="uploads")
    client.put_object(Bucket="uploads", Key="a.png", Body=encode(photo(224, 224, seed=3), "PNG"))
    env = {"SYNTHSPOT_REDIS_URL": redis_server.url, **s3_server.env(), "SYNTHSPOT_WEIGHTS": str(weights),
           "SYNTHSPOT_METRICS_PORT": str(free_port()), "SYNTHSPOT_METRICS_HOST": "127.0.0.1",
           "SYNTHSPOT_STATE_DIR": str(tmp_path / "state"), "SYNTHSPOT_DEVICE": "cpu",
           "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2", "SYNTHSPOT_TASK_MAX_RETRIES": "1000", "SYNTHSPOT_LOG_LEVEL": "INFO"}
    base = f"http://127.0.0.1:{env['SYNTHSPOT_METRICS_PORT']}"
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        deadline = time.monotonic() + 120
        while "checksum_mismatch" not in worker.log():
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.log()[-3000:]
            time.sleep(0.2)
        assert http_status(base + "/livez") == 200 and http_status(base + "/readyz") == 503
        [record] = [json.loads(line) for line in worker.log().splitlines()
                    if line.startswith("{") and "checksum_mismatch" in line]
        assert record["level"] == "error" and str(weights) in record["msg"] and "exc" not in record

        settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): v for k, v in env.items()})
        send([make_check("s3://uploads/a.png", task_id="while-broken")], app=create_app(settings))
        time.sleep(8)
        assert wait_for_verdicts(["while-broken"], settings=settings, timeout_s=0) == {}, "scored or answered"
        text = get_text(base + "/metrics")
        assert metric_by_label(text, "synthspot_errors_total").get("model_unavailable", 0) >= 1
        assert metric_by_label(text, "synthspot_tasks_total")["retried"] >= 1
        assert http_status(base + "/readyz") == 503 and worker.proc.poll() is None

        weights.write_bytes(good)  # the deployment is fixed
        verdict = wait_for_verdicts(["while-broken"], settings=settings, timeout_s=90)["while-broken"]
        assert verdict.status == "scored" and verdict.model.weights_sha256 == json.loads(
            weights.with_name("model.pth.sha256").read_text())["sha256"]
        assert http_status(base + "/readyz") == 200
    finally:
        worker.stop()


# --- dependencies ----------------------------------------------------------------------------------------

def test_dependencies_have_no_known_vulnerabilities(tmp_path):
    """pip-audit over the installed environment; skipped, with the reason, where its service is unreachable."""
    exe = shutil.which("pip-audit") or str(Path(__import__("sys").executable).with_name("pip-audit"))
    if not Path(exe).exists():
        pytest.skip("pip-audit is not installed (pip install pip-audit)")
    report = tmp_path / "audit.json"
    proc = subprocess.run([exe, "--progress-spinner", "off", "--skip-editable", "--format", "json",
                           "--output", str(report)], capture_output=True, text=True, timeout=300)
    if not report.exists():
        pytest.skip(f"pip-audit could not run: {proc.stderr.strip().splitlines()[-1:]}")
    deps = json.loads(report.read_text())["dependencies"]
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        # pip-audit then says "No known vulnerabilities found" and exits 0, having checked nothing
        pytest.skip(f"pip-audit's vulnerability service is unreachable from here: all {len(deps)} packages "
                    f"skipped, e.g. {deps[0]['skip_reason'] if deps else 'none listed'}")
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in audited if d.get("vulns")}
    assert not vulnerable, vulnerable
