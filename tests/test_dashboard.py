"""deploy/grafana/dashboard.json: valid JSON, sound layout, and queries on exported metrics only.

Every PromQL expression (panel targets and template variables) may only name metrics that
worker/metrics.py exports or that Prometheus adds itself; promtool parses each expression (as a
recording rule, Grafana's $variables replaced) so a syntax error fails here, not on a screen.
tests/test_prometheus_scrape.py also runs them against a real Prometheus scraping a real worker.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from metric_names import PROMETHEUS_BUILTINS, exported_metric_names, metric_names_in

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboard.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$namespace": ".*",
                     "${datasource}": "prometheus"}


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every query in the dashboard."""
    found = [(f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"])
             for p in panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            found.append((f"variable {var['name']}", inner.group(1) if inner else query))
    return found


def substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def test_dashboard_is_valid_json_with_a_sound_layout():
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels(dashboard):
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        if p["type"] != "row":
            assert p["targets"], f"{p['title']} has no query"
            assert p["datasource"]["uid"] == "${datasource}", f"{p['title']} must use the datasource variable"
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert "datasource" in names


def test_queries_use_only_exported_metrics():
    exported = exported_metric_names() | PROMETHEUS_BUILTINS
    used_overall = set()
    for where, expr in expressions(load()):
        used = metric_names_in(expr)
        assert used, f"{where}: no metric in {expr!r}"
        assert used <= exported, f"{where} uses metrics synthspot does not export: {used - exported}"
        used_overall |= used
    # the panels: queue, throughput, latency, verdict mix, deliveries
    assert {"synthspot_queue_length", "synthspot_tasks_total", "synthspot_stage_seconds_bucket",
            "synthspot_verdicts_total", "synthspot_deliveries_total"} <= used_overall


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_queries_parse_as_promql(tmp_path):
    rules = [{"record": f"dashboard:query_{i}", "expr": substitute(expr)}
             for i, (_, expr) in enumerate(expressions(load()))]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
