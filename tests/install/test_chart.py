"""The Helm chart and the kustomize base as files: lint, schema, CRD copies, what the API server
says of the rendered objects (server-side dry run), and that both install paths agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from deploybell.api.kinds import WATCHED_KINDS
from tests.install.helpers import (
    CHART,
    DOCKERFILE,
    KUSTOMIZE,
    Helm,
    find,
    image_entrypoint,
    kustomize_build,
)
from tests.support.cluster import ClusterAccess
from tests.support.operator import ROOT

LOCKDOWN = {"defaultServiceAccount": "deployer", "rbac": {"applyAsOperator": False}}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def test_helm_lint_strict(helm: Helm) -> None:
    helm("lint", "--strict", str(CHART))
    every_option = {
        **LOCKDOWN,
        "replicas": 2,
        "watchNamespaces": ["team-a", "team-b"],
        "smtp": {"host": "mail.example", "existingSecret": "smtp", "tls": "starttls"},
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True, "window": "30d", "interval": "1m"},
            "dashboard": {"enabled": True, "annotations": {"grafana_folder": "Deploys"}},
        },
        "historyLimit": 50,
        "logLevel": "debug",
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
    }
    helm("lint", "--strict", str(CHART), "--values", helm.values_file(every_option))


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replica": 2}, "replica"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"smtp": {"tls": "ssl"}}, "tls"),
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
        ({"rbac": {"applyAsOperator": "no"}}, "applyAsOperator"),
        ({"shards": ["Shard_A"]}, "shards"),
        ({"shards": ["a", "a"]}, "shards"),
        ({"historyLimit": 500}, "historyLimit"),
        ({"metrics": {"prometheusRule": {"window": "a week"}}}, "window"),
        ({"metrics": {"dashboard": {"folder": "x"}}}, "folder"),
    ],
)
def test_schema_rejects_invalid_values(helm: Helm, values: dict[str, Any], complaint: str) -> None:
    proc = helm("template", "x", str(CHART), "--values", helm.values_file(values), check=False)
    assert proc.returncode != 0, f"{values} was accepted"
    assert "schema" in proc.stderr, proc.stderr
    assert complaint in proc.stderr, proc.stderr


def test_crd_copies_match_the_repository_crds() -> None:
    """crds/ is the one source of truth; run `make sync-crds` after changing it."""
    sources = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    peering = (CHART / "crds" / "kopf.dev_peerings.yaml").read_text()
    for copy in (CHART / "crds", KUSTOMIZE / "crds"):
        copies = {
            p.name: p.read_text() for p in copy.glob("*.yaml") if p.name != "kustomization.yaml"
        }
        assert copies == {**sources, "kopf.dev_peerings.yaml": peering}, (
            f"{copy.relative_to(ROOT)} drifted from crds/: run `make sync-crds`"
        )


VALUE_SETS: dict[str, Callable[[str], dict[str, Any]]] = {
    "defaults": lambda ns: {},
    "lockdown-namespaced": lambda ns: {**LOCKDOWN, "watchNamespaces": [ns]},
    "ha-clusterwide": lambda ns: {"replicas": 2, "clusterName": "prod"},
    "shards-ha": lambda ns: {"replicas": 2, "shards": ["a", "b"]},
    "shards-namespaced": lambda ns: {"shards": ["a"], "watchNamespaces": [ns], "replicas": 2},
    "ha-namespaced-debug-smtp": lambda ns: {
        "replicas": 3,
        "watchNamespaces": [ns],
        "logLevel": "debug",
        "smtp": {"host": "mail.example", "from": "ops@example.com", "existingSecret": "smtp"},
    },
    # The dashboard ConfigMap (the PrometheusRule needs the Prometheus Operator's CRDs: promtool
    # checks it, tests/install/test_dora_rules.py).
    "dora-dashboard-history": lambda ns: {
        "historyLimit": 100,
        "metrics": {"dashboard": {"enabled": True}},
    },
}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_chart_passes_server_side_dry_run(
    cluster: ClusterAccess,
    helm: Helm,
    chart_crds: None,
    make_namespace: Callable[..., str],
    value_set: str,
) -> None:
    ns = make_namespace("dryrun", {"pod-security.kubernetes.io/enforce": "restricted"})
    watched = make_namespace("dryrun-watched")
    objects = helm.template(
        f"deploybell-{value_set}", ns, VALUE_SETS[value_set](watched), "--include-crds"
    )
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=body)
    assert out.count("(server dry run)") == len(objects), out


def rules_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for o in objects if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]


def test_lockdown_grants_no_apply_rights(helm: Helm) -> None:
    """Lockdown: writes only to deploybell's own objects, Events and kopf's peering object."""
    for watch in ([], ["team-a"]):
        objects = helm.template(
            "deploybell", "ops", {**LOCKDOWN, "watchNamespaces": watch, "replicas": 2}
        )
        bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
        assert {b["roleRef"]["name"] for b in bindings} == {"deploybell"}, bindings
        writes = {
            (group, resource, verb)
            for rule in rules_of(objects)
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in set(rule["verbs"]) & WRITE_VERBS
        }
        peering = "kopfpeerings" if watch else "clusterkopfpeerings"
        assert writes == {
            ("deploybell.io", "deployjobs", "patch"),
            ("deploybell.io", "deployjobs/status", "patch"),
            ("deploybell.io", "notifications/status", "patch"),
            ("", "events", "create"),
            ("kopf.dev", peering, "patch"),
        }
        impersonate = [r for r in rules_of(objects) if "impersonate" in r["verbs"]]
        assert [r["resources"] for r in impersonate] == [["serviceaccounts"]]


@pytest.mark.parametrize("watch", [[], ["team-a"]])
def test_rbac_lets_the_operator_watch_every_watched_kind(helm: Helm, watch: list[str]) -> None:
    """The watched kinds are listed once (api/kinds.py); the chart (and so the kustomize base,
    equal to it) grants list and watch on each of them, cluster-wide or per namespace."""
    granted = {
        (group, resource, verb)
        for rule in rules_of(helm.template("deploybell", "ops", {"watchNamespaces": watch}))
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for kind in WATCHED_KINDS:
        for verb in ("list", "watch"):
            assert (kind.group, kind.plural, verb) in granted, (kind, verb)


def test_default_mode_binds_the_apply_cluster_role(helm: Helm) -> None:
    objects = helm.template("deploybell", "ops", {})
    apply = find(objects, "ClusterRoleBinding", "deploybell-apply")
    assert apply["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }
    namespaced = helm.template("deploybell", "ops", {"watchNamespaces": ["team-a"]})
    role_binding = find(namespaced, "RoleBinding", "deploybell-apply")
    assert role_binding["metadata"]["namespace"] == "team-a"
    assert role_binding["roleRef"]["name"] == "cluster-admin"
    assert not [
        o
        for o in namespaced
        if o["kind"] == "ClusterRoleBinding" and o["roleRef"]["name"] == "cluster-admin"
    ]


def test_replicas_turn_peering_on(helm: Helm) -> None:
    single = find(helm.template("deploybell", "ops", {}), "Deployment")
    assert single["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"] for e in single["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DEPLOYBELL_PEERING" not in env

    objects = helm.template("deploybell", "ops", {"replicas": 2})
    ha = find(objects, "Deployment")
    container = ha["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DEPLOYBELL_PEERING", "value": "deploybell"} in container["env"]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert ha["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert find(objects, "ClusterKopfPeering", "deploybell")


def test_shards_get_a_deployment_and_a_peering_object_each_and_share_rbac(helm: Helm) -> None:
    objects = helm.template("deploybell", "ops", {"shards": ["a", "b"], "replicas": 2})
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert deployments.keys() == {"deploybell", "deploybell-shard-a", "deploybell-shard-b"}
    peerings = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterKopfPeering"}
    assert peerings == {"deploybell", "deploybell-a", "deploybell-b"}
    env_of: dict[str, dict[str, str]] = {}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        env_of[name] = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}
        # No Deployment's selector matches another one's pods.
        for other, theirs in deployments.items():
            labels = theirs["spec"]["template"]["metadata"]["labels"]
            selects = deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert selects == (other == name), (name, other)
        assert pod["spec"]["serviceAccountName"] == "deploybell"
    assert "DEPLOYBELL_SHARD_KEY" not in env_of["deploybell"]
    assert env_of["deploybell-shard-a"]["DEPLOYBELL_SHARD_KEY"] == "a"
    assert [env_of[n]["DEPLOYBELL_PEERING"] for n in sorted(deployments)] == [
        "deploybell",
        "deploybell-a",
        "deploybell-b",
    ]
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"] == [
        "deploybell"
    ]
    patchable = [
        r["resourceNames"] for r in rules_of(objects) if "clusterkopfpeerings" in r["resources"]
        and "resourceNames" in r
    ]  # fmt: skip
    assert patchable == [["deploybell", "deploybell-a", "deploybell-b"]]
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    shard_a = deployments["deploybell-shard-a"]["spec"]["template"]["metadata"]["labels"]
    assert services["deploybell-shard-a-metrics"]["spec"]["selector"].items() <= shard_a.items()


def test_service_monitor_scrapes_the_metrics_service(helm: Helm) -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    objects = helm.template("deploybell", "ops", values)
    monitor = find(objects, "ServiceMonitor")
    service = find(objects, "Service", "deploybell-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert not [o for o in helm.template("deploybell", "ops", {}) if o["kind"] == "ServiceMonitor"]


def strip_labels(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without metadata.labels (helm's and kustomize's differ by design)."""
    out = json.loads(json.dumps(obj))
    out["metadata"].pop("labels", None)
    return out


def test_kustomize_base_matches_the_chart_defaults(cluster: ClusterAccess, helm: Helm) -> None:
    """Same objects, same specs, same rules: only labels differ (helm adds its own)."""
    chart = {
        (o["kind"], o["metadata"]["name"]): o
        for o in helm.template("deploybell", "deploybell-system", {})
    }
    base = {
        (o["kind"], o["metadata"]["name"]): o
        for o in kustomize_build(cluster, KUSTOMIZE / "operator")
        if o["kind"] != "Namespace"
    }
    assert base.keys() == chart.keys()
    for key, obj in base.items():
        assert strip_labels(obj) == strip_labels(chart[key]), f"{key} differs"
        wanted = chart[key]["metadata"]["labels"]
        selector = {k: wanted[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        assert obj["metadata"]["labels"] == selector, key
    crds = kustomize_build(cluster, KUSTOMIZE / "crds")
    assert {o["metadata"]["name"] for o in crds} == {
        "deployjobs.deploybell.io",
        "notifications.deploybell.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def test_dockerfile_agrees_with_the_chart(helm: Helm) -> None:
    text = DOCKERFILE.read_text()
    assert image_entrypoint() == ["deploybell", "run"]
    assert "ARG BASE=python:3.11-slim" in text.splitlines()
    stages = [ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM ")]
    assert stages == ["${BUILD_BASE}", "${BASE}"], stages
    pod = find(helm.template("deploybell", "ops", {}), "Deployment")["spec"]["template"]["spec"]
    user = pod["securityContext"]["runAsUser"]
    assert f"USER {user}:{pod['securityContext']['runAsGroup']}" in text.splitlines()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!README.md", "!operator/", "!requirements/"} <= set(ignored)
