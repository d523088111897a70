"""deploy/prometheus: alert rules checked and unit-tested with Debian's promtool, config checked.

`promtool check rules` parses every expression, `promtool test rules` runs the scenarios in
alerts_test.yaml (each alert fires when it should and stays quiet when it should not), and every
metric the rules read must be one worker/metrics.py exports.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from metric_names import PROMETHEUS_BUILTINS, exported_metric_names, metric_names_in

PROM_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; "
                                                              "tests/run.sh does it)")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:
    doc = yaml.safe_load((PROM_DIR / "alerts.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


@needs_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests():
    result = promtool("test", "rules", "alerts_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_compose_prometheus_config_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_exist():
    names = {rule["alert"] for rule in rules()}
    assert {"SynthspotQueueBacklog",        # queue backlog
            "SynthspotErrorRatioHigh",      # error ratio
            "SynthspotDeadLetterGrowing",   # dead-letter growth
            "SynthspotNoWorkerAlive",       # no worker alive
            "SynthspotSlowInference"} <= names


def test_every_alert_is_unit_tested_and_documented():
    tested = set()
    for case in yaml.safe_load((PROM_DIR / "alerts_test.yaml").read_text())["tests"]:
        tested |= {t["alertname"] for t in case["alert_rule_test"] if t.get("exp_alerts")}
    for rule in rules():
        assert rule["alert"] in tested, f"{rule['alert']} never fires in alerts_test.yaml"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_read_only_exported_metrics():
    exported = exported_metric_names() | PROMETHEUS_BUILTINS
    for rule in rules():
        used = metric_names_in(rule["expr"])
        assert used, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        assert used <= exported, f"{rule['alert']} reads metrics synthspot does not export: {used - exported}"
