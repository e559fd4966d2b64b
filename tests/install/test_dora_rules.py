"""The chart's DORA recording rules and Grafana dashboard: promtool checks and unit-tests the
rendered rules, every dashboard query parses, and both name only series that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import deploybell.metrics  # noqa: F401  (registers the operator's metrics)
from tests.install.helpers import Helm, find
from tests.support.cluster import ClusterAccess

HERE = Path(__file__).parent
RULES_ON = {"metrics": {"prometheusRule": {"enabled": True}}}
DASHBOARD_ON = {"metrics": {"dashboard": {"enabled": True}}}
# Grafana's variables, replaced by values a Prometheus query may hold, to parse each query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "5m",
    "$__range": "30d",
    "$environment": ".*",
    "$namespace": ".*",
    "$deployjob": ".*",
}
SERIES_NAME = re.compile(r"\b(?:[a-z_]+:)?deploybell_[a-z0-9_]+(?::[a-z0-9_]+)?")


@pytest.fixture(scope="module")
def promtool(cluster: ClusterAccess) -> Path:
    path = cluster.bin_dir / "promtool"
    assert path.exists(), f"{path} missing: hack/cluster/build.sh builds it (PROMTOOL_VERSION)"
    return path


def run(promtool: Path, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{output}"
    return output


def rule_groups(helm: Helm, values: dict[str, Any]) -> list[dict[str, Any]]:
    rule = find(helm.template("deploybell", "monitoring", values), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return list(rule["spec"]["groups"])


def write_rules(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def dashboard(helm: Helm, values: dict[str, Any] = DASHBOARD_ON) -> dict[str, Any]:
    config_map = find(
        helm.template("deploybell", "monitoring", values),
        "ConfigMap",
        "deploybell-dora-dashboard",
    )
    return dict(json.loads(config_map["data"]["deploybell-dora.json"]))


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL query of the panels, and the selectors inside the variables' label_values."""
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+), *[a-z_]+\)", variable["query"]["query"])
            assert inner, variable
            queries.append(inner.group(1))
    return queries


def operator_series() -> set[str]:
    """The sample names the operator's /metrics exposes (histograms with _bucket/_sum/_count)."""
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
        if metric.type == "histogram":
            names |= {f"{metric.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
    return names


def test_off_by_default(helm: Helm) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in helm.template("x", "ops", {})}
    assert not [k for k in kinds if k[0] == "PrometheusRule"]
    assert ("ConfigMap", "x-deploybell-dora-dashboard") not in kinds


def test_rules_pass_promtool_check_and_lint(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", rule_groups(helm, RULES_ON))
    out = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(rules))
    assert "SUCCESS: 7 rules found" in out, out


def test_rules_unit_tests(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """tests/install/dora/rules.test.yaml: figures per environment from series of replicas."""
    write_rules(tmp_path / "rules.yaml", rule_groups(helm, RULES_ON))
    shutil.copy(HERE / "dora" / "rules.test.yaml", tmp_path / "rules.test.yaml")
    out = run(promtool, "test", "rules", "rules.test.yaml", cwd=tmp_path)
    assert "SUCCESS" in out, out


def test_window_interval_and_labels_are_values(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "window": "30d",
                "interval": "5m",
                "labels": {"release": "prom"},
            }
        }
    }
    objects = helm.template("deploybell", "monitoring", values)
    rule = find(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    (group,) = rule["spec"]["groups"]
    assert group["interval"] == "5m"
    ranges = {r for rule_ in group["rules"] for r in re.findall(r"\[(\w+)\]", rule_["expr"])}
    assert ranges == {"30d"}
    run(promtool, "check", "rules", str(write_rules(tmp_path / "rules.yaml", [group])))


def test_rules_read_only_series_the_operator_exposes_or_they_record(helm: Helm) -> None:
    groups = rule_groups(helm, RULES_ON)
    recorded = {r["record"] for g in groups for r in g["rules"]}
    read = {name for g in groups for r in g["rules"] for name in SERIES_NAME.findall(r["expr"])}
    assert read - recorded <= operator_series(), read - recorded - operator_series()
    # Each of the four figures per environment is recorded.
    assert {
        "environment:deploybell_deployment_frequency:per_day",
        "environment:deploybell_lead_time_seconds:p50",
        "environment:deploybell_change_failure_rate:ratio",
        "environment:deploybell_time_to_restore_seconds:p50",
        "environment:deploybell_time_to_restore_seconds:mean",
    } <= recorded


def test_every_dashboard_query_parses(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    queries = dashboard_queries(dashboard(helm))
    assert len(queries) >= 10
    rules = []
    for i, query in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"a Grafana variable left in {query}"
        rules.append({"record": f"dashboard:query_{i}:check", "expr": query})
    path = write_rules(tmp_path / "dashboard.yaml", [{"name": "dashboard", "rules": rules}])
    out = run(promtool, "check", "rules", str(path))
    assert f"SUCCESS: {len(queries)} rules found" in out, out


def test_dashboard_plots_the_recorded_figures_and_the_outcomes(helm: Helm) -> None:
    board = dashboard(helm)
    assert board["uid"] == "deploybell-dora"
    used = {name for q in dashboard_queries(board) for name in SERIES_NAME.findall(q)}
    recorded = {r["record"] for g in rule_groups(helm, RULES_ON) for r in g["rules"]}
    assert used <= recorded | operator_series(), used - recorded - operator_series()
    assert {
        "environment:deploybell_deployment_frequency:per_day",
        "environment:deploybell_lead_time_seconds:p50",
        "environment:deploybell_change_failure_rate:ratio",
        "environment:deploybell_time_to_restore_seconds:p50",
        "deploybell_deployments_total",  # the per-job outcomes over time
    } <= used
    datasources = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
    assert datasources == {"${datasource}"}


def test_dashboard_config_map_follows_the_sidecar_convention(helm: Helm) -> None:
    values = {
        "metrics": {
            "dashboard": {
                "enabled": True,
                "namespace": "grafana",
                "labels": {"team": "platform"},
                "annotations": {"grafana_folder": "Deployments"},
            }
        }
    }
    objects = helm.template("deploybell", "monitoring", values)
    config_map = find(objects, "ConfigMap", "deploybell-dora-dashboard")
    meta = config_map["metadata"]
    assert meta["namespace"] == "grafana"
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["team"] == "platform"
    assert meta["annotations"] == {"grafana_folder": "Deployments"}
    assert json.loads(config_map["data"]["deploybell-dora.json"])["panels"]
