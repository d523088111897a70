"""deploy/: compose stack, Dockerfile, entrypoint, webhook receiver and reference configs.

No Docker engine runs here (nor in CI), so the images are not built; these tests check what can be
checked without one: the compose file's services and settings (fed to synthspot's own strict
settings loader), the Dockerfile's stages, paths and settings against the chart and pyproject, the
entrypoint script for real, and the webhook receiver as a real server with real signatures.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import threading
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from synthspot.integrations.signing import parse_secret, signature_headers
from synthspot.worker.settings import Settings, unknown_env

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
CHART_PATHS = {"/tmp", "/run/synthspot/metrics", "/var/cache/synthspot", "/var/lib/synthspot"}


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the defaults."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), value)


def settings_from(env: dict[str, str], monkeypatch) -> Settings:
    for key in list(os.environ):
        if key.upper().startswith("SYNTHSPOT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert unknown_env() == []
    return Settings()


# --- compose ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_stack(compose):
    services = compose["services"]
    assert {"redis", "s3", "worker", "deliver", "receiver", "prometheus"} <= set(services)
    redis_args = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_args and "--maxmemory-policy noeviction" in redis_args
    assert "--requirepass" in redis_args
    for name in ("worker", "deliver", "receiver"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["read_only"] is True and {"/tmp", "/run/synthspot/metrics"} <= set(service["tmpfs"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"compose mounts a missing {source}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "the try-out stack publishes on loopback only"


def test_compose_settings_are_accepted_by_synthspot(compose, monkeypatch):
    services = compose["services"]
    ports = {}
    for name in ("worker", "deliver"):
        env = {k: interpolate(str(v)) for k, v in services[name]["environment"].items()}
        with monkeypatch.context() as m:
            settings = settings_from(env, m)
        assert settings.redis_url.get_secret_value().startswith("redis://:synthspot-local@redis:6379/")
        assert settings.storage == "s3" and settings.s3_endpoint_url == "http://s3:9000"
        assert settings.s3_allowed_buckets == ["uploads"]
        (integration,) = settings.integrations
        assert integration.type == "webhook" and integration.url.get_secret_value().startswith("http://receiver:8080/")
        secret = integration.secrets[0].get_secret_value()
        parse_secret(secret)  # a well-formed whsec_ secret
        assert interpolate(services["receiver"]["environment"]["WEBHOOK_SECRETS"]) == secret
        grace = int(services[name]["stop_grace_period"].rstrip("s"))
        assert grace > settings.soft_shutdown_timeout_s
        assert services[name]["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "synthspot.commands.health"]
        ports[name] = settings.metrics_port if name == "worker" else settings.deliver_metrics_port
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets["synthspot-worker"] == [f"worker:{ports['worker']}"]
    assert targets["synthspot-deliver"] == [f"deliver:{ports['deliver']}"]
    mounts = services["prometheus"]["volumes"]
    assert "./prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro" in mounts
    assert prometheus["rule_files"] == ["alerts.yaml"]


def test_compose_gpu_override():
    override = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())["services"]["worker"]
    assert override["build"]["args"]["FLAVOR"] == "cuda" and override["image"].endswith("-cuda")
    assert override["environment"]["SYNTHSPOT_DEVICE"] == "cuda"
    (device,) = override["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


# --- Dockerfile ------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (DEPLOY / "Dockerfile").read_text().splitlines()
                                        if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


def test_dockerfile_stages_and_runtime():
    instructions = dockerfile()
    stages = [args.split() for op, args in instructions if op == "FROM"]
    names = {s[-1] for s in stages if len(s) == 3 and s[1].upper() == "AS"}
    assert {"torch-cuda", "torch-cpu", "build", "runtime-cpu", "runtime-cuda"} <= names
    assert stages[-1][0] == "runtime-${FLAVOR}"
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    ops = {op: args for op, args in final}
    assert ops["USER"].split(":")[0] not in ("0", "root")
    assert "synthspot.commands.health" in ops["HEALTHCHECK"]
    assert json.loads(ops["ENTRYPOINT"]) == ["/usr/bin/tini", "--", "/usr/local/bin/synthspot-entrypoint"]
    assert json.loads(ops["CMD"]) == ["worker"]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(args for op, args in final if op == "ENV")))
    synthspot_env = {k: v for k, v in env.items() if k.startswith("SYNTHSPOT_")}
    assert unknown_env(synthspot_env) == []
    # the same writable paths as the chart's emptyDirs and compose's tmpfs / volumes
    assert {env["PROMETHEUS_MULTIPROC_DIR"], env["SYNTHSPOT_CACHE_DIR"], env["SYNTHSPOT_STATE_DIR"]} <= CHART_PATHS
    runtime = next(args for op, args in instructions if op == "RUN" and "useradd" in args)
    for path in ("/var/cache/synthspot", "/var/lib/synthspot", "/run/synthspot/metrics"):
        assert path in runtime
    cuda_env = instructions[[i for i, (op, a) in enumerate(instructions) if a.endswith("AS runtime-cuda")][0] + 1]
    assert cuda_env[0] == "ENV" and "NVIDIA_VISIBLE_DEVICES=all" in cuda_env[1]


def test_dockerfile_matches_pyproject_and_dockerignore():
    instructions = dockerfile()
    pins = {d.split("==")[0]: d.split("==")[1] for d in tomllib.loads((REPO / "pyproject.toml").read_text())
            ["project"]["dependencies"] if d.startswith(("torch==", "torchvision=="))}
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    assert (args["TORCH_VERSION"], args["TORCHVISION_VERSION"]) == (pins["torch"], pins["torchvision"])
    assert args["TORCH_CPU_INDEX"] == "https://download.pytorch.org/whl/cpu"
    allowed = [line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for op, arguments in instructions:
        if op == "COPY" and "--from=" not in arguments:
            *sources, _ = [a for a in arguments.split() if not a.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: missing"
                assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"


# --- entrypoint ------------------------------------------------------------------------------------

def test_entrypoint_empties_metrics_dir_and_runs_programs(tmp_path):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (multiproc / "gauge_livesum_1.db").write_bytes(b"stale")
    (multiproc / "keep.txt").write_text("not a sample file")
    env = {"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    result = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), "sh", "-c", 'echo "$PROMETHEUS_MULTIPROC_DIR"'],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(multiproc)
    assert sorted(p.name for p in multiproc.iterdir()) == ["keep.txt"]


def test_entrypoint_links_baked_weights_only_for_model_commands(tmp_path):
    baked = tmp_path / "baked" / "weights"
    baked.mkdir(parents=True)
    (baked / "w.pth").write_bytes(b"w")
    (baked / "w.pth.sha256").write_text("{}")
    cache = tmp_path / "cache"
    env = {"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m"),
           "BAKED_WEIGHTS_DIR": str(tmp_path / "baked"), "SYNTHSPOT_CACHE_DIR": str(cache)}
    # `deliver` loads no model: nothing linked (a stand-in `synthspot` on PATH records the call)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "synthspot").write_text('#!/bin/sh\necho "synthspot $*"\n')
    (bin_dir / "synthspot").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), "deliver"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.strip() == "synthspot deliver" and not cache.exists()
    result = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), "worker", "--concurrency=4"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "synthspot worker --concurrency=4"
    assert (cache / "weights" / "w.pth").resolve() == (baked / "w.pth").resolve()
    assert (cache / "weights" / "w.pth.sha256").is_symlink()
    result = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "synthspot worker"


# --- webhook receiver ------------------------------------------------------------------------------

def load_receiver():
    spec = importlib.util.spec_from_file_location("webhook_receiver", DEPLOY / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_webhook_receiver_verifies_and_deduplicates():
    receiver = load_receiver()
    secret = "whsec_" + base64.b64encode(b"r" * 32).decode()
    server = receiver.make_server("127.0.0.1", 0, [secret])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = json.dumps({"type": "verdict.created", "timestamp": "2026-01-01T00:00:00Z",
                           "data": {"task_id": "t-1", "label": "synthetic", "score": 0.97,
                                    "image": {"url": "s3://uploads/a.png"}}}).encode()
        headers = signature_headers("msg_t-1", body, [secret])
        assert post(f"{url}/synthspot", body, headers) == 204
        assert post(f"{url}/synthspot", body, headers) == 204                     # a retry: deduplicated
        forged = signature_headers("msg_t-2", body, ["whsec_" + base64.b64encode(b"x" * 32).decode()])
        assert post(f"{url}/synthspot", body, forged) == 401
        assert post(f"{url}/synthspot", body, {}) == 401
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:
            events = json.loads(response.read())
        assert [e["webhook_id"] for e in events] == ["msg_t-1"]
        assert receiver.summary(events[0]["event"]) == "task_id=t-1 label=synthetic score=0.97 image=s3://uploads/a.png"
    finally:
        server.shutdown()
        server.server_close()


# --- reference configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["worker", "deliver"])
def test_reference_configs_load(role, tmp_path, monkeypatch):
    path = DEPLOY / "config" / f"{role}.toml"
    with monkeypatch.context() as m:
        settings = settings_from({"SYNTHSPOT_CONFIG": str(path), "SYNTHSPOT_STATE_DIR": str(tmp_path)}, m)
    assert settings.log_format == "json"
    if role == "worker":
        assert settings.device == "cuda" and settings.metrics_port == 9808 and settings.storage == "s3"
    else:
        assert settings.deliver_metrics_port == 9809 and settings.retry_schedule_s[-1] == 86400
