"""`synthspot health`: the container health check, against the real metrics server of worker/httpd.py."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import free_port
from synthspot.commands import health
from synthspot.worker.httpd import serve


@pytest.fixture
def server():
    """A real /metrics, /livez, /readyz server whose readiness the test switches."""
    state = {"ready": False}
    httpd = serve("127.0.0.1", 0, lambda: state["ready"])
    httpd.state = state
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def clean_env(monkeypatch, **settings: str) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith("SYNTHSPOT_"):
            monkeypatch.delenv(key)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)


def test_ready_live_and_down(server, monkeypatch, capsys):
    clean_env(monkeypatch)
    port = str(server.server_address[1])
    assert health.main(["--port", port]) == 1                      # loading: /readyz answers 503
    assert "503" in capsys.readouterr().err
    assert health.main(["--port", port, "--live"]) == 0            # but the process serves
    server.state["ready"] = True
    assert health.main(["--port", port]) == 0
    assert "healthy" in capsys.readouterr().out
    assert health.main(["--port", str(free_port())]) == 1          # nothing listens
    assert "unhealthy" in capsys.readouterr().err
    assert health.main(["--port", str(free_port()), "--quiet"]) == 1
    assert capsys.readouterr() == ("", "")


def test_ports_come_from_the_settings(server, monkeypatch):
    server.state["ready"] = True
    port = str(server.server_address[1])
    closed = str(free_port())
    clean_env(monkeypatch, SYNTHSPOT_METRICS_PORT=port, SYNTHSPOT_DELIVER_METRICS_PORT=closed)
    assert health.main(["--role", "worker"]) == 0
    assert health.main(["--role", "deliver"]) == 1
    assert health.main([]) == 0                                    # auto: the worker's port answers
    clean_env(monkeypatch, SYNTHSPOT_METRICS_PORT=closed, SYNTHSPOT_DELIVER_METRICS_PORT=port)
    assert health.main([]) == 0                                    # auto: falls through to the deliverer's
    assert health.main(["--role", "worker"]) == 1
    clean_env(monkeypatch, SYNTHSPOT_METRICS_PORT="0", SYNTHSPOT_DELIVER_METRICS_PORT="0")
    assert health.main([]) == 1                                    # metrics off: cannot be checked


def test_broken_settings_are_unhealthy(monkeypatch, capsys):
    clean_env(monkeypatch, SYNTHSPOT_METRICS_PROT="9808")
    assert health.main([]) == 1
    assert "SYNTHSPOT_METRICS_PROT" in capsys.readouterr().err


def test_module_entry_point_is_light(server):
    """What HEALTHCHECK runs: no torch, no Celery, so it answers fast."""
    server.state["ready"] = True
    code = ("import sys; from synthspot.commands.health import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('torch', 'celery', 'boto3') if m in sys.modules]; "
            "assert not heavy, heavy; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "--port", str(server.server_address[1])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-m", "synthspot.commands.health", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "unhealthy" in result.stderr


def test_registered_in_the_cli():
    from synthspot.cli import build_parser

    args = build_parser().parse_args(["health", "--role", "deliver", "--live"])
    assert args._module is health and args.role == "deliver" and args.live
