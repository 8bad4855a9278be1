"""deploy/prometheus/gitml-alerts.yaml: Prometheus's rule-file shape, every expr valid PromQL, and every
metric and label it reads one a real server's /metrics exports (promtool is used too where installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from typing import Any

import pytest
import yaml

from tests.projects import ROOT
from tests.tiny_bundles import rows, tiny_bundle

RULES = ROOT / "deploy/prometheus/gitml-alerts.yaml"
# Prometheus's rule-file format (prometheus.io/docs/prometheus/latest/configuration/alerting_rules/).
GROUP_KEYS = {"name", "interval", "limit", "rules", "query_offset", "labels"}
ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
DURATION = r"(\d+(ms|s|m|h|d|w|y))+"
# Labels the scrape adds (job, instance) and a histogram's buckets carry (le).
SCRAPE_LABELS = {"job", "instance"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, set[str]]:
    """Each series name a real in-process server's /metrics exports, with the labels it may carry."""
    from prometheus_client.parser import text_string_to_metric_families

    from gitml.config.schema import ServeConfig
    from gitml.serve.app import create_app
    from gitml.serve.state import ServeSettings, ServeState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    root = tmp_path_factory.mktemp("rules")
    state = ServeState(ServeSettings(bundle=str(tiny_bundle(root / "bundle")),
                                     cfg=ServeConfig(log_dir=str(root / "logs"), log_flush_seconds=60)))
    with TestClient(create_app(state)) as client:
        answer = client.post("/invocations", json={"dataframe_split": {"columns": list(rows(3).columns),
                                                                        "data": rows(3).to_numpy().tolist()}})
        assert answer.status_code == 200, answer.text
        text = client.get("/metrics").text
    labels = {metric._name: set(metric._labelnames) for metric in vars(state.metrics).values()
              if hasattr(metric, "_labelnames")}
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in labels:  # a counter's or histogram's _created samples parse as a family of their own
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = labels[family.name] | SCRAPE_LABELS | (
                    {"le"} if suffix == "_bucket" else set())
    return names


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_file_has_the_shape_of_a_prometheus_rule_file():
    data = yaml.safe_load(RULES.read_text())
    assert set(data) == {"groups"} and data["groups"]
    groups = [group["name"] for group in data["groups"]]
    assert len(groups) == len(set(groups))
    for group in data["groups"]:
        assert set(group) <= GROUP_KEYS and group["rules"], group["name"]
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)) and len(names) >= 8
    for rule in rules():
        assert set(rule) <= ALERT_KEYS and {"alert", "expr"} <= set(rule), rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
        assert "for" not in rule or re.fullmatch(DURATION, rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def selectors(node: Any) -> list[Any]:
    """Every vector selector of a parsed PromQL expression (promql_parser's AST)."""
    import promql_parser

    if isinstance(node, promql_parser.VectorSelector):
        return [node]
    found = []
    for attribute in ("lhs", "rhs", "expr", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            found += selectors(child)
    for child in getattr(node, "args", None) or []:
        found += selectors(child)
    return found


def test_every_expr_parses_and_reads_only_metrics_and_labels_the_server_exports(exported):
    import promql_parser

    seen = set()
    for rule in rules():
        tree = promql_parser.parse(rule["expr"])
        assert selectors(tree), rule["alert"]
        for selector in selectors(tree):
            assert selector.name in exported, f"{rule['alert']}: {selector.name} is not a metric the server exports"
            used = {m.name for m in selector.matchers.matchers}
            assert used <= exported[selector.name], f"{rule['alert']}: {used - exported[selector.name]}"
            seen.add(selector.name)
    # the alerts cover errors, latency, predictions, reloads, logs, shadow and canary traffic
    assert {"gitml_requests_total", "gitml_predict_duration_seconds_bucket", "gitml_predicted_rows_total",
            "gitml_model_reload_failures_total", "gitml_log_write_failures_total", "gitml_shadow_failures_total",
            "gitml_routed_requests_total", "gitml_traffic_weight_percent"} <= seen


def test_the_parser_refuses_what_promtool_would():
    import promql_parser

    for bad in ("rate(gitml_requests_total[5m]", "sum by (job (gitml_requests_total)", "gitml_requests_total[5x]"):
        with pytest.raises(ValueError):
            promql_parser.parse(bad)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    """gitml-alerts.test.yaml: error rate, no predictions and an off-target canary fire on series a server
    would export, and not before their `for` nor on a healthy server, model or version."""
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout
    tested = subprocess.run(["promtool", "test", "rules", RULES.with_suffix(".test.yaml").name],
                            capture_output=True, text=True, cwd=RULES.parent)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_rules_are_documented():
    text = (ROOT / "docs/alerts.md").read_text()
    for rule in rules():
        assert rule["alert"] in text, rule["alert"]
