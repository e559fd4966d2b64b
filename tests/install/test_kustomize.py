"""`kubectl apply -k manifests/install`, and uninstalling the operator while keeping the CRDs."""

from __future__ import annotations

import json

from tests.install.helpers import KUSTOMIZE
from tests.support.cluster import ClusterAccess, wait_for

NAMESPACE = "deploybell-system"


def test_apply_k_installs_a_ready_operator_then_delete_keeps_the_crds(
    cluster: ClusterAccess, chart_crds: None
) -> None:
    out = cluster.kubectl("apply", "-k", str(KUSTOMIZE))
    assert "namespace/deploybell-system" in out, out
    try:
        cluster.kubectl(
            "rollout", "status", "deployment/deploybell", "-n", NAMESPACE, "--timeout=120s"
        )
        pods = json.loads(
            cluster.kubectl(
                "get",
                "pods",
                "-n",
                NAMESPACE,
                "-l",
                "app.kubernetes.io/name=deploybell",
                "-o",
                "json",
            )
        )["items"]
        assert len(pods) == 1, pods
        assert pods[0]["spec"]["nodeName"].startswith("kwok-node-")
        labels = json.loads(cluster.kubectl("get", "namespace", NAMESPACE, "-o", "json"))
        assert labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert (
            cluster.kubectl(
                "auth",
                "can-i",
                "create",
                "clusterrolebindings",
                "--as=system:serviceaccount:deploybell-system:deploybell",
                check=False,
            ).strip()
            == "yes"
        )
    finally:
        cluster.kubectl(
            "delete", "-k", str(KUSTOMIZE / "operator"), "--wait=true", "--timeout=120s"
        )
    wait_for(
        "namespace deploybell-system deleted",
        lambda: not cluster.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found").strip(),
        timeout=120,
    )
    assert not cluster.kubectl("get", "clusterrole", "deploybell", "--ignore-not-found").strip()
    for crd in ("deployjobs.deploybell.io", "kopfpeerings.kopf.dev"):
        cluster.kubectl("get", "crd", crd)
