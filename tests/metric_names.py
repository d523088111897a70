"""Metric names: those synthspot exports (read from worker/metrics.py) and those a PromQL expression uses.

Shared by the alert-rule and dashboard tests, so that neither can reference a metric the worker
does not export (a typo there is an alert that never fires or a panel that stays empty).
"""
from __future__ import annotations

import re

# Series Prometheus itself adds to every scrape target.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                       "scrape_series_added"}
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "info": ("_info",), "enum": ("",)}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
             "inf", "nan", "atan2"}


def exported_metric_names() -> set[str]:
    """Every series name synthspot's metrics module can expose (base name plus its type's suffixes)."""
    from prometheus_client.metrics import MetricWrapperBase

    from synthspot.worker import metrics

    names = set()
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            names.update(obj._name + suffix for suffix in _SUFFIXES[obj._type])
    assert names, "no metrics found in synthspot.worker.metrics"
    return names


def metric_names_in(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)   # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                                           # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                                          # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)                                         # $__rate_interval, ${var}
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        token, call = match.group(1), match.group(2)
        if call or token.lower() in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", token):
            continue
        names.add(token)
    return names
