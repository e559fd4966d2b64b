"""`helm install` into a namespace that enforces the restricted Pod Security Standard, `helm
upgrade` with changed values, `helm uninstall` keeping the CRDs and users' DeployJobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.install.helpers import CHART, Helm
from tests.support.cluster import ClusterAccess, condition, wait_for
from tests.support.deploybell import configmap, deployjob

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def operator_pods(cluster: ClusterAccess, release: str, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
    )
    return list(json.loads(out)["items"])


def env_of(pod_spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod_spec["containers"][0]["env"]}


def ready_pods_with(
    cluster: ClusterAccess, release: str, namespace: str, cluster_name: str
) -> list[dict[str, Any]] | None:
    """The release's pods when all are Ready, not terminating, and run with this cluster name."""
    pods = operator_pods(cluster, release, namespace)
    fine = [
        p
        for p in pods
        if (condition(p, "Ready") or {}).get("status") == "True"
        and not p["metadata"].get("deletionTimestamp")
        and env_of(p["spec"]).get("DEPLOYBELL_CLUSTER_NAME") == cluster_name
    ]
    return pods if pods and len(fine) == len(pods) else None


def test_install_upgrade_uninstall_in_a_restricted_namespace(
    cluster: ClusterAccess,
    helm: Helm,
    release: Callable[..., str],
    make_namespace: Callable[..., str],
) -> None:
    ns = make_namespace("deploybell-helm", RESTRICTED)
    # The namespace really enforces it: a pod with no securityContext is refused.
    with pytest.raises(AssertionError, match="violates PodSecurity"):
        cluster.kubectl(
            "run", "plain", "--image=registry.invalid/x:1", "-n", ns, "--dry-run=server"
        )

    name = release("deploybell-helm", ns, {"clusterName": "staging"}, wait=True)
    pods = wait_for("the operator pod Ready", lambda: ready_pods_with(cluster, name, ns, "staging"))
    assert len(pods) == 1
    node = json.loads(cluster.kubectl("get", "node", pods[0]["spec"]["nodeName"], "-o", "json"))
    assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"
    assert pods[0]["spec"]["securityContext"]["runAsUser"] == 10001

    helm(
        "upgrade",
        name,
        str(CHART),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "clusterName=production",
        "--wait",
        "--timeout",
        "180s",
    )
    deployment = cluster.get("deployment", name, ns)
    assert deployment is not None
    env = env_of(deployment["spec"]["template"]["spec"])
    assert env["DEPLOYBELL_CLUSTER_NAME"] == "production"
    wait_for(
        "the upgraded pod Ready (and the old one gone)",
        lambda: ready_pods_with(cluster, name, ns, "production"),
        timeout=120,
    )
    history = json.loads(helm("history", name, "-n", ns, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

    users = make_namespace("deploybell-users")
    cluster.apply(deployjob("kept", [configmap("kept", {"k": "v"})]), users)
    helm("uninstall", name, "-n", ns, "--wait", "--timeout", "120s")
    assert cluster.get("deployment", name, ns) is None
    assert cluster.kubectl("get", "clusterrole", name, "--ignore-not-found").strip() == ""
    for crd in ("deployjobs.deploybell.io", "notifications.deploybell.io"):
        cluster.kubectl("get", "crd", crd)
    assert cluster.get("deployjobs.deploybell.io", "kept", users) is not None
