"""The Helm chart, rendered and validated without a cluster or a helm binary.

CI renders helm/synthspot with its default values and with ci/gpu-keda-values.yaml through PyPI
``helm-python-sdk`` (Helm v4's Go SDK over ctypes), lints it, and validates every object:
Kubernetes kinds with PyPI ``kubernetes-validate`` in strict mode (schemas bundled), KEDA's
ScaledObject / TriggerAuthentication and the Prometheus operator's PodMonitor against the schemas
in helm/synthspot/ci/crd-schemas/ (see its README for where they come from). Then the rendered
environment of each container is fed to synthspot's own settings loader, which refuses unknown
SYNTHSPOT_* variables, so chart and settings cannot drift apart.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

helm = pytest.importorskip("helm_python", reason="helm-python-sdk not installed (pip install -e '.[ci]')")
kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed (pip install -e '.[ci]')")
yaml = pytest.importorskip("yaml")

import jsonschema  # noqa: E402 - installed with kubernetes-validate
import kubernetes_validate.utils as kv_utils  # noqa: E402
from referencing import Registry, Resource  # noqa: E402

from synthspot.worker.settings import Settings, unknown_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "synthspot"
CRD_SCHEMAS = CHART / "ci" / "crd-schemas"
GPU_VALUES = CHART / "ci" / "gpu-keda-values.yaml"
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion >=1.27) that kubernetes-validate
# still bundles, and the newest it bundles.
KUBE_VERSIONS = ("1.27.0", kv_utils.latest_version())
# Settings the chart sets itself (secrets, ports, paths): not allowed under values.config.
CHART_MANAGED = {"state_dir", "cache_dir", "redis_url", "broker_url", "s3_access_key_id", "s3_secret_access_key",
                 "integrations", "metrics_port", "metrics_host", "deliver_metrics_port"}
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
             ("monitoring.coreos.com/v1", "PodMonitor")}
# What an existing Secret holds in the GPU values (the chart does not render it).
EXISTING_SECRET = {
    "REDIS_PASSWORD": "s3cr3t-Redis_pass",
    "SYNTHSPOT_INTEGRATIONS": json.dumps([{"name": "platform", "type": "webhook",
                                           "url": "https://hooks.example.com/synthspot",
                                           "secrets": ["whsec_" + base64.b64encode(b"k" * 32).decode()]}]),
}


def gpu_values() -> dict:
    return yaml.safe_load(GPU_VALUES.read_text())


VALUE_SETS = {"default": dict, "gpu-keda": gpu_values}


def render(values: dict, name: str = "synthspot", namespace: str = "moderation") -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=name, namespace=namespace)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})
                objects.append(doc)
    return objects


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request) -> tuple[str, dict, list[dict]]:
    values = VALUE_SETS[request.param]()
    return request.param, values, render(values)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name_suffix: str = "") -> dict:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


# --- validation -----------------------------------------------------------------------------------

_CRD_VALIDATORS: dict[tuple[str, str], jsonschema.protocols.Validator] = {}


def crd_validator(api_version: str, kind: str, kube_version: str) -> jsonschema.protocols.Validator:
    key = (api_version, kind, kube_version)
    if key not in _CRD_VALIDATORS:
        group, version = api_version.split("/")
        schema = json.loads((CRD_SCHEMAS / f"{kind.lower()}-{group.split('.')[0]}-{version}.json").read_text())
        schema_dir = f"v{kube_version}-local-strict"
        definitions = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", kube_version)
        registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))
        jsonschema.Draft202012Validator.check_schema(schema)
        _CRD_VALIDATORS[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return _CRD_VALIDATORS[key]


def validation_errors(obj: dict, kube_version: str) -> list[str]:
    where = f"{obj['kind']}/{obj['metadata'].get('name')}"
    if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
        validator = crd_validator(obj["apiVersion"], obj["kind"], kube_version)
        return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kv.validate(obj, kube_version, strict=True)
    except kv_utils.ValidationError as exc:
        return [f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}"]
    except kv_utils.SchemaNotFoundError as exc:
        return [f"{where}: no schema: {exc.message}"]
    return []


def test_lint_passes_with_both_value_sets():
    for name, make in VALUE_SETS.items():
        report = helm.lint(str(CHART), make(), strict=True, namespace="moderation")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
        assert not problems, f"{name}: {problems}"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_strictly(rendered, kube_version):
    name, _, objects = rendered
    errors = [e for obj in objects for e in validation_errors(obj, kube_version)]
    assert not errors, f"{name} values, Kubernetes {kube_version}:\n" + "\n".join(errors)


def test_rendered_kinds(rendered):
    name, _, objects = rendered
    kinds = sorted(o["kind"] for o in objects)
    if name == "default":
        assert kinds == sorted(["ConfigMap", "Secret", "ServiceAccount", "Deployment", "Deployment",
                                "HorizontalPodAutoscaler", "PodDisruptionBudget", "PodDisruptionBudget"])
    else:
        assert kinds == sorted(["ConfigMap", "ServiceAccount", "Deployment", "Deployment", "ScaledObject",
                                "TriggerAuthentication", "PodMonitor", "PodDisruptionBudget",
                                "PodDisruptionBudget"])


def test_validators_are_not_vacuous():
    """Typos and wrong types that the validators must catch."""
    objects = render(gpu_values())
    scaled = json.loads(json.dumps(one(objects, "ScaledObject")))
    scaled["spec"]["triggers"][0]["metadata"]["listname"] = scaled["spec"]["triggers"][0]["metadata"].pop("listName")
    assert validation_errors(scaled, KUBE_VERSIONS[-1])
    scaled = json.loads(json.dumps(one(objects, "ScaledObject")))
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 64  # KEDA wants strings
    assert validation_errors(scaled, KUBE_VERSIONS[-1])
    scaled = json.loads(json.dumps(one(objects, "ScaledObject")))
    scaled["spec"]["minReplicas"] = 1  # the HPA's name, not KEDA's
    assert validation_errors(scaled, KUBE_VERSIONS[-1])
    monitor = json.loads(json.dumps(one(objects, "PodMonitor")))
    monitor["spec"]["podMetricsEndpoints"][0]["targetport"] = 9808
    assert validation_errors(monitor, KUBE_VERSIONS[-1])
    worker = json.loads(json.dumps(one(objects, "Deployment", "-worker")))
    worker["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert validation_errors(worker, KUBE_VERSIONS[-1])


# --- values.schema.json ---------------------------------------------------------------------------

def config_keys() -> list[str]:
    """What values.schema.json should allow under ``config``: every setting the chart does not set."""
    return [name for name in Settings.model_fields if name not in CHART_MANAGED]


def update_schema() -> None:
    """Rewrite the ``config`` key list of values.schema.json from worker/settings.py."""
    path = CHART / "values.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["config"]["propertyNames"]["enum"] = config_keys()
    path.write_text(json.dumps(schema, indent=2) + "\n")


def test_schema_config_keys_are_synthspot_settings():
    schema = json.loads((CHART / "values.schema.json").read_text())
    allowed = set(schema["properties"]["config"]["propertyNames"]["enum"])
    assert allowed == set(config_keys()), (
        "helm/synthspot/values.schema.json lists other settings than worker/settings.py "
        f"(unknown: {sorted(allowed - set(config_keys()))}, missing: {sorted(set(config_keys()) - allowed)}); "
        "run `.venv/bin/python tests/test_helm_chart.py --update-schema`")
    assert set(yaml.safe_load((CHART / "values.yaml").read_text())["config"]) <= allowed


@pytest.mark.parametrize("values, message", [
    ({"config": {"redis_url": "redis://x"}}, "redis_url"),          # secrets go to the Secret
    ({"config": {"batchsize": 8}}, "batchsize"),                     # unknown setting
    ({"deliver": {"replicas": 0}}, "replicas"),                      # at least one deliverer
    ({"worker": {"gpu": {"enabled": "yes"}}}, "enabled"),
    ({"autoscaling": {"hpa": {"metric": "memory"}}}, "metric"),
    ({"redis": {"password": "p@ss/word"}}, "password"),              # goes into a URL
    ({"worker": {"extraEnv": [{"name": "SYNTHSPOT_REDIS_URL", "value": "x"}]}}, "name"),
])
def test_schema_refuses_bad_values(values, message):
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError, match=message):
        chart.validate_schema(values)


def test_auth_without_a_password_fails_to_render():
    with pytest.raises(helm.HelmError, match="redis.password"):
        render({"redis": {"auth": True}})


# --- what the pods will run with -------------------------------------------------------------------

def container_env(objects: list[dict], container: dict) -> dict[str, str]:
    """The environment the kubelet gives ``container``: envFrom, then env with $(VAR) expanded."""
    env: dict[str, str] = {}
    secrets = {s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
               for s in by_kind(objects, "Secret")}
    configmaps = {c["metadata"]["name"]: c.get("data") or {} for c in by_kind(objects, "ConfigMap")}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                      lambda m: env.get(m.group(1), m.group(0)), var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            data = secrets.get(ref["name"], EXISTING_SECRET)
            if ref["key"] in data:
                env[var["name"]] = data[ref["key"]]
            else:
                assert ref.get("optional"), f"{var['name']}: required key {ref['key']} missing from {ref['name']}"
    return env


def settings_for(env: dict[str, str], monkeypatch) -> Settings:
    import os

    for key in list(os.environ):
        if key.upper().startswith("SYNTHSPOT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert unknown_env() == [], "the chart sets settings synthspot does not know"
    return Settings()


def test_containers_environment_is_accepted_by_synthspot(rendered, monkeypatch):
    name, values, objects = rendered
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = container_env(objects, container)
        with monkeypatch.context() as m:
            settings = settings_for(env, m)
        role = container["args"][0]
        assert role in ("worker", "deliver")
        port = settings.metrics_port if role == "worker" else settings.deliver_metrics_port
        assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
        assert settings.redis_url is not None and not settings.embedded
        if values.get("redis", {}).get("auth"):
            assert f":{EXISTING_SECRET['REDIS_PASSWORD']}@" in settings.redis_url.get_secret_value()
        if role == "worker":  # Celery's soft shutdown, then the batch in the GPU
            assert pod["terminationGracePeriodSeconds"] > settings.soft_shutdown_timeout_s
        else:  # attempts in flight finish: the longest webhook timeout allowed is 60 s
            assert pod["terminationGracePeriodSeconds"] > 60
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/run/synthspot/metrics"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in ("/tmp", env["PROMETHEUS_MULTIPROC_DIR"], str(settings.cache_dir), str(settings.state_dir)):
            assert "emptyDir" in volumes[mounts[path]], f"{path} is not a writable emptyDir"
        if role == "worker":
            assert settings.device == ("cuda" if name == "gpu-keda" else "cpu")
            assert container["image"].endswith("-cuda" if name == "gpu-keda" else "-cpu")
            if name == "gpu-keda":
                assert settings.weights and settings.weights.startswith(values["weights"]["mountPath"])
                assert len(settings.integrations) == 1 and settings.integrations[0].secrets
                assert settings.threshold == 0.6 and settings.s3_allowed_buckets == ["uploads", "uploads-eu"]


def test_pods_are_hardened_and_probed(rendered):
    _, _, objects = rendered
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
        assert "replicas" not in deployment["spec"] or deployment["metadata"]["name"].endswith("-deliver")
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        selected = pdb["spec"]["selector"]["matchLabels"]
        assert any(selected.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in by_kind(objects, "Deployment"))


def test_gpu_worker_shape():
    objects = render(gpu_values())
    worker = one(objects, "Deployment", "-worker")
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container["args"] == ["worker"]
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    account = one(objects, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    deliver = one(objects, "Deployment", "-deliver")
    assert deliver["spec"]["replicas"] == 2
    assert "nvidia.com/gpu" not in json.dumps(deliver)


def test_keda_scales_the_worker_on_the_queue_list(monkeypatch):
    values = gpu_values()
    objects = render(values)
    scaled, auth = one(objects, "ScaledObject"), one(objects, "TriggerAuthentication")
    worker = one(objects, "Deployment", "-worker")
    env = container_env(objects, worker["spec"]["template"]["spec"]["containers"][0])
    with monkeypatch.context() as m:
        settings = settings_for(env, m)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker["metadata"]["name"]}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 8)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    meta = trigger["metadata"]
    assert meta["listName"] == settings.queue == "synthspot.score"
    assert meta["listLength"] == "64" and meta["activationListLength"] == "1"
    url = settings.redis_url.get_secret_value()
    assert url.endswith(f"@{meta['address']}/{meta['databaseIndex']}")
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    (ref,) = auth["spec"]["secretTargetRef"]
    password_env = next(v for v in worker["spec"]["template"]["spec"]["containers"][0]["env"]
                        if v["name"] == "REDIS_PASSWORD")
    assert ref == {"parameter": "password", **{k: password_env["valueFrom"]["secretKeyRef"][k] for k in ("name", "key")}}
    assert not by_kind(objects, "HorizontalPodAutoscaler"), "KEDA owns the HPA; the chart must not add one"


def test_pod_monitor_scrapes_both_roles():
    objects = render(gpu_values())
    monitor = one(objects, "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    for deployment in by_kind(objects, "Deployment"):
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items()
        assert endpoint["port"] in [p["name"] for p in template["spec"]["containers"][0]["ports"]]


def test_chart_secret_holds_what_the_pods_read(monkeypatch):
    secret = "whsec_" + base64.b64encode(b"s" * 24).decode()
    values = {"redis": {"auth": True, "password": "pw-123"},
              "secrets": {"s3AccessKeyId": "AKIAEXAMPLE", "s3SecretAccessKey": "shh",
                          "integrations": [{"name": "platform", "type": "webhook", "url": "https://h.example/x",
                                            "secrets": [secret]}]},
              "autoscaling": {"keda": {"enabled": True}}}
    objects = render(values)
    worker = one(objects, "Deployment", "-worker")
    env = container_env(objects, worker["spec"]["template"]["spec"]["containers"][0])
    with monkeypatch.context() as m:
        settings = settings_for(env, m)
    assert settings.redis_url.get_secret_value() == "redis://:pw-123@redis:6379/0"
    assert settings.s3_access_key_id.get_secret_value() == "AKIAEXAMPLE"
    assert settings.integrations[0].secrets[0].get_secret_value() == secret
    auth = one(objects, "TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"][0]["name"] == one(objects, "Secret")["metadata"]["name"]
    checksums = worker["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(checksums)
    assert not [e for o in objects for e in validation_errors(o, KUBE_VERSIONS[-1])]


def test_hpa_alternative_on_an_external_metric():
    objects = render({"autoscaling": {"hpa": {"metric": "external"}, "minReplicas": 0}})
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 1, "an HPA cannot scale to zero"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "synthspot_queue_length"
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"queue": "synthspot.score"}
    assert not [e for o in objects for e in validation_errors(o, KUBE_VERSIONS[-1])]


def test_notes_render():
    with helm.Chart.load(str(CHART)) as chart:
        for make in VALUE_SETS.values():
            notes = chart.render(make(), name="synthspot", namespace="moderation")["synthspot/templates/NOTES.txt"]
            assert "synthspot submit" in notes and "{{" not in notes


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update-schema"]:
        update_schema()
        print(f"updated {CHART / 'values.schema.json'}")
    else:
        sys.exit("usage: python tests/test_helm_chart.py --update-schema")
