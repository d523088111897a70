"""A real Prometheus server scrapes a real `synthspot worker` started by the container entrypoint.

The worker runs embedded (file-system broker, no Redis), through deploy/entrypoint.sh as in the
image: PROMETHEUS_MULTIPROC_DIR is set and emptied first (a stale sample file left there must not
survive), weights "baked" into a folder are linked into the cache, and metrics are served in
prometheus_client's multiprocess mode. Debian's `prometheus` binary scrapes it every second with
deploy/prometheus/alerts.yaml loaded; the test reads the series back through Prometheus's HTTP
API, checks that every alert rule evaluates, and runs every Grafana dashboard query.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import free_port
from services import WorkerProcess, wait_for_port

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboard.json"
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus; "
                                                            "tests/run.sh does it)")


class EntrypointWorker(WorkerProcess):
    """``synthspot worker`` started the way the image starts it: ``entrypoint.sh worker``."""

    def start(self) -> "EntrypointWorker":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["sh", str(ENTRYPOINT), "worker", f"--hostname={self.name}@%h"], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


class PrometheusServer:
    def __init__(self, root: Path, targets: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        jobs = "\n".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']"
                         for job, target in targets.items())
        self.config = root / "prometheus.yml"
        self.config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                               f"rule_files:\n  - {ALERTS}\nscrape_configs:\n{jobs}\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PrometheusServer":
        self._log = open(self.root / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=60)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"Prometheus has no result for {expr!r} after {timeout}s; "
                             f"targets: {self.api('targets')['activeTargets']}")


def test_prometheus_scrapes_a_running_worker(tmp_path, parity_checkpoint):
    port = free_port()
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    (multiproc / "counter_99999.db").write_bytes(b"stale samples of an earlier run")
    baked = tmp_path / "baked" / "weights"
    baked.mkdir(parents=True)
    (baked / "resnet50.example.pth").write_bytes(b"not used by this worker")
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "BAKED_WEIGHTS_DIR": str(tmp_path / "baked"),
        "SYNTHSPOT_STATE_DIR": str(tmp_path / "state"),
        "SYNTHSPOT_CACHE_DIR": str(tmp_path / "cache"),
        "SYNTHSPOT_METRICS_PORT": str(port),
        "SYNTHSPOT_METRICS_HOST": "127.0.0.1",
        "SYNTHSPOT_WEIGHTS": str(parity_checkpoint),
        "SYNTHSPOT_DEVICE": "cpu",
    }
    worker = EntrypointWorker(env, tmp_path / "worker.log").start()
    prometheus = PrometheusServer(tmp_path, {"synthspot-worker": f"127.0.0.1:{port}"})
    try:
        prometheus.start()
        worker.wait_ready(timeout=150)

        # the entrypoint emptied the multiprocess folder and linked the baked weights
        files = sorted(p.name for p in multiproc.iterdir())
        assert "counter_99999.db" not in files and files, files
        link = tmp_path / "cache" / "weights" / "resnet50.example.pth"
        assert link.is_symlink() and link.resolve() == (baked / "resnet50.example.pth").resolve()

        (ready,) = prometheus.wait_for('synthspot_ready{job="synthspot-worker", role="worker"} == 1')
        assert ready["metric"]["instance"] == f"127.0.0.1:{port}"
        (info,) = prometheus.wait_for("synthspot_model_info")
        assert info["metric"]["arch"] == "resnet50" and len(info["metric"]["sha256"]) == 64
        assert info["metric"]["weights"] == str(parity_checkpoint)
        outcomes = {r["metric"]["outcome"] for r in prometheus.wait_for("synthspot_tasks_total")}
        assert outcomes == {"scored", "error", "duplicate", "retried"}
        stages = {r["metric"]["stage"] for r in prometheus.wait_for("synthspot_stage_seconds_count")}
        assert {"queue_wait", "fetch", "decode", "inference", "total"} <= stages
        assert prometheus.query('up{job="synthspot-worker"}')[0]["value"][1] == "1"

        # the alert rules load and evaluate against real series; once the worker is ready (it was
        # not while its model loaded), the worker alerts go back to inactive
        watched = ("SynthspotNoWorkerAlive", "SynthspotWorkerNotReady")
        deadline = time.monotonic() + 40
        while True:
            groups = prometheus.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            states = {r["name"]: r["state"] for r in rules if r["name"] in watched}
            settled = rules and all(r["health"] == "ok" for r in rules) and set(states.values()) == {"inactive"}
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {g["name"] for g in groups} == {"synthspot.queue", "synthspot.errors", "synthspot.delivery",
                                               "synthspot.availability", "synthspot.latency"}
        assert [r["name"] for r in rules if r["health"] != "ok"] == [], rules
        assert states == {name: "inactive" for name in watched}

        # every dashboard query is accepted by this Prometheus
        from test_dashboard import expressions, load, substitute

        for where, expr in expressions(load()):
            prometheus.query(substitute(expr).replace("[5m]", "[1m]"))
    finally:
        code = worker.stop()
        prometheus.stop()
    assert code == 0, worker.log()[-3000:]
