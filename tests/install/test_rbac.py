"""RBAC is real: the operator runs here authenticated as the chart's ServiceAccount (a
TokenRequest token in a kubeconfig of its own), configured exactly as the chart's Deployment
configures its container, and passes the core scenario in each RBAC mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.install.helpers import (
    can_i,
    installed_deployment,
    pod_process,
    service_account_kubeconfig,
)
from tests.install.scenario import (
    assert_no_denials,
    core_scenario,
    running,
    unique_cluster_name,
)
from tests.support.cluster import ClusterAccess
from tests.support.deploybell import subscribed, wait_dj
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("no_session_operator")


def test_default_mode_cluster_wide(
    cluster: ClusterAccess,
    release: Callable[..., str],
    make_namespace: Callable[..., str],
    notification_ns: str,
    webhook_peer: WebhookPeer,
    logs: Path,
) -> None:
    system = make_namespace("deploybell-default")
    cluster_name = unique_cluster_name()
    values = {"failfastGraceSeconds": 5, "clusterName": cluster_name}
    name = release("deploybell-default", system, values)
    kubeconfig = service_account_kubeconfig(cluster, system, name, logs / "sa.kubeconfig")
    user = f"system:serviceaccount:{system}:{name}"
    # Default mode: the operator itself may apply anything, anywhere.
    assert can_i(cluster, kubeconfig, "create", "deployments", "-n", notification_ns)
    assert can_i(cluster, kubeconfig, "create", "clusterrolebindings")

    proc = pod_process(
        cluster,
        installed_deployment(cluster, name, system),
        f"{name}-pod",
        kubeconfig,
        logs / "operator.log",
    )
    with running(cluster, proc, [notification_ns]):
        core_scenario(cluster, notification_ns, webhook_peer, cluster_name)
        assert_no_denials(proc, user)


def grant_edit(cluster: ClusterAccess, namespace: str, service_account: str) -> None:
    """The ServiceAccount DeployJobs apply as: Kubernetes' `edit` role in its namespace."""
    cluster.kubectl("create", "serviceaccount", service_account, "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        f"{service_account}-edit",
        "-n",
        namespace,
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:{service_account}",
    )


def run_over(status: dict[str, Any]) -> bool:
    return status.get("run") == 1 and status.get("phase") in ("Failed", "Succeeded")


def escalation(namespace: str) -> dict[str, object]:
    """A ClusterRoleBinding, beyond what `edit` in a namespace allows. It binds the harmless
    `view`, in case an operator that is not locked down ever applies it."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-escalate"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "view",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}],
    }


def test_lockdown_namespaced(
    cluster: ClusterAccess,
    release: Callable[..., str],
    make_namespace: Callable[..., str],
    notification_ns: str,
    webhook_peer: WebhookPeer,
    logs: Path,
) -> None:
    ns = notification_ns
    grant_edit(cluster, ns, "deployer")
    system = make_namespace("deploybell-lockdown")
    cluster_name = unique_cluster_name()
    values = {
        "clusterName": cluster_name,
        "watchNamespaces": [ns],
        "defaultServiceAccount": "deployer",
        "rbac": {"applyAsOperator": False},
        "failfastGraceSeconds": 5,
    }
    name = release("deploybell-lockdown", system, values)
    kubeconfig = service_account_kubeconfig(cluster, system, name, logs / "sa.kubeconfig")
    user = f"system:serviceaccount:{system}:{name}"
    # Lockdown: the operator applies nothing as itself; it may only act as ServiceAccounts.
    assert not can_i(cluster, kubeconfig, "create", "deployments", "-n", ns)
    assert not can_i(cluster, kubeconfig, "patch", "deployments", "-n", ns)
    assert not can_i(cluster, kubeconfig, "create", "clusterrolebindings")
    assert not can_i(cluster, kubeconfig, "list", "deployjobs.deploybell.io", "-n", system)
    assert can_i(cluster, kubeconfig, "impersonate", "serviceaccounts/deployer", "-n", ns)

    proc = pod_process(
        cluster,
        installed_deployment(cluster, name, system),
        f"{name}-pod",
        kubeconfig,
        logs / "operator.log",
    )
    try:
        with running(cluster, proc, [ns]):
            # No rollbackOnFailure: its snapshot Secret is written as the operator (README).
            core_scenario(cluster, ns, webhook_peer, cluster_name, snapshot=False)
            # The deployer may not create a ClusterRoleBinding, so neither may the DeployJob.
            cluster.apply(subscribed("escalate", [escalation(ns)]), ns)
            status = wait_dj(cluster, ns, "escalate", "run 1 over", run_over)["status"]
            assert status["phase"] != "Succeeded", (
                "the ClusterRoleBinding was applied: another deploybell operator, not locked "
                f"down, drives this cluster's DeployJobs too\n{status}"
            )
            assert (status["phase"], status["reason"]) == ("Failed", "Forbidden"), status
            assert f"system:serviceaccount:{ns}:deployer" in status["message"], status
            assert "clusterrolebindings" in status["message"], status
            assert_no_denials(proc, user)
        crb = cluster.kubectl("get", "clusterrolebinding", f"{ns}-escalate", "--ignore-not-found")
        assert crb.strip() == "", "the ClusterRoleBinding was created"
    finally:
        cluster.kubectl("delete", "clusterrolebinding", f"{ns}-escalate", "--ignore-not-found")
