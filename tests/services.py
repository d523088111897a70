"""Real services for integration tests, started on free loopback ports and stopped afterwards.

* ``RedisServer``: Debian's ``redis-server`` with AOF on and ``noeviction``, restartable on the
  same port and data folder (to test that nothing is lost across a restart);
* ``S3Server``: PyPI ``nanio``, a file-backed S3-compatible server that checks SigV4
  signatures; stoppable and restartable on the same port and data folder;
* ``WorkerProcess``: a real ``synthspot worker`` process with a given environment.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers import free_port

ACCESS_KEY = "synthspot-test"
SECRET_KEY = "synthspot-test-secret-key-0123456789"


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class RedisServer:
    """``tls``: ``(cert, key, ca)`` PEM files: serve TLS only (``rediss://``), no plain-text port."""

    def __init__(self, data_dir: Path, port: int | None = None, password: str | None = None,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        self.exe = shutil.which("redis-server")
        if not self.exe:
            raise RuntimeError("redis-server not installed (apt-get install redis-server; tests/run.sh does it)")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction",
                "--save", "", "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            cert, key, ca = self.tls
            args[1:3] = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                         "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self, hard: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, **({"ssl_ca_certs": str(self.tls[2])} if self.tls else {}))


class S3Server:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        exe = Path(sys.executable).with_name("nanio")
        self.cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nanio"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        env = {**os.environ, "NANIO_ACCESS_KEY": ACCESS_KEY, "NANIO_SECRET_KEY": SECRET_KEY}
        self.proc = subprocess.Popen([*self.cmd, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--data-dir", str(self.data_dir), "--no-access-log", "--log-level", "warning"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, secret: str = SECRET_KEY):
        from synthspot.integrations.s3 import make_client

        return make_client(endpoint_url=self.endpoint, access_key_id=ACCESS_KEY, secret_access_key=secret,
                           max_attempts=2)

    def env(self) -> dict[str, str]:
        """SYNTHSPOT_* settings that point a worker at this server."""
        return {"SYNTHSPOT_STORAGE": "s3", "SYNTHSPOT_S3_ENDPOINT_URL": self.endpoint,
                "SYNTHSPOT_S3_ACCESS_KEY_ID": ACCESS_KEY, "SYNTHSPOT_S3_SECRET_ACCESS_KEY": SECRET_KEY}


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a ``/metrics`` page keyed by (sample name, labels), read with
    prometheus-client's own exposition-format parser rather than by splitting lines."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry ``labels`` (0 when there are none)."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in metric_samples(text).items() if n == name and want <= lbl)


def metric_by_label(text: str, name: str) -> dict[str, float]:
    """``{label value: sample}`` of a one-label metric."""
    return {value: v for (n, lbl), v in metric_samples(text).items() if n == name for _, value in lbl}


class SynthspotProcess:
    """A ``synthspot`` command as a separate process (own session, so a kill reaches its threads),
    with a ``SYNTHSPOT_*`` environment and its output in a log file; ready once its ``/readyz``
    answers 200 on the port named by ``port_setting``."""

    command: list[str] = []
    port_setting = "SYNTHSPOT_METRICS_PORT"
    role = "process"
    ready_timeout = 60.0

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSPOT_")}
        self.env.update(env)
        self.env.setdefault("SYNTHSPOT_LOG_FORMAT", "json")
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SynthspotProcess":
        exe = Path(sys.executable).with_name("synthspot")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "synthspot"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*cmd, *self.command], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env[self.port_setting]}"

    def metrics(self) -> str:
        """The process's ``/metrics`` page."""
        import urllib.request

        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=5) as r:
            return r.read().decode()

    def wait_ready(self, timeout: float | None = None) -> None:
        import urllib.request

        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited with {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.metrics_url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.role} not ready after {timeout}s; log: {self.log_path}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess(SynthspotProcess):
    """``synthspot worker``; ready once its weights are loaded and verified."""

    role = "worker"
    ready_timeout = 180.0

    def __init__(self, env: dict[str, str], log_path: Path, name: str = "w1") -> None:
        super().__init__(env, log_path)
        self.name = name
        self.command = ["worker", f"--hostname={name}@%h"]
