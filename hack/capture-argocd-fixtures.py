#!/usr/bin/env python3
"""Capture DeployJob objects in each state from real runs on the local cluster, as fixtures of
the Argo CD health check (manifests/argocd/deploybell.io/DeployJob/testdata/).

    DEPLOYBELL_CLUSTER_DIR=... .venv/bin/python hack/capture-argocd-fixtures.py

Runs the operator from this checkout against the local cluster (started when needed; stop any
other operator on it first) and, in the namespace deploybell-argocd-fixtures, drives one DeployJob
to each phase (no status yet, Deploying, Verifying, Succeeded, Failed, Canceled); then, with the
operator stopped, changes a spec and requests a redeploy (what Argo CD sees before deploybell
starts the run). Each object is saved as Argo CD receives it, less the server's bookkeeping
(managedFields, uid, ...).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.cluster import ClusterAccess, start_or_reuse  # noqa: E402
from tests.support.deploybell import (  # noqa: E402
    UNSCHEDULABLE,
    deployjob,
    deployment,
    get_dj,
    wait_dj,
)
from tests.support.operator import OperatorProcess  # noqa: E402

OUT = ROOT / "manifests" / "argocd" / "deploybell.io" / "DeployJob" / "testdata"
NAMESPACE = "deploybell-argocd-fixtures"
DROPPED_METADATA = ("managedFields", "uid", "resourceVersion", "creationTimestamp", "finalizers")

Check = Callable[[dict[str, Any]], bool]


def phase(name: str) -> Check:
    return lambda status: status.get("phase") == name


def save(cluster: ClusterAccess, name: str, fixture: str) -> None:
    obj = get_dj(cluster, NAMESPACE, name)
    assert obj is not None, name
    for key in DROPPED_METADATA:
        obj["metadata"].pop(key, None)
    obj["metadata"].get("annotations", {}).pop(
        "kubectl.kubernetes.io/last-applied-configuration", None
    )
    if not obj["metadata"].get("annotations"):
        obj["metadata"].pop("annotations", None)
    path = OUT / f"{fixture}.yaml"
    path.write_text(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100))
    print(f"saved {path.relative_to(ROOT)} (phase {(obj.get('status') or {}).get('phase')})")


def job(name: str, **spec: Any) -> dict[str, Any]:
    manifests = spec.pop("manifests", None) or [deployment(name)]
    return deployjob(name, manifests, **spec)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    cluster = start_or_reuse()
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/deployjobs.deploybell.io", "--timeout=60s"
    )
    log = Path(tempfile.mkdtemp()) / "operator.log"
    # Cluster-wide: restarted while its namespace is Terminating, a namespaced (-n) operator
    # released nothing here (kopf 1.45), so the namespace could not go.
    operator = OperatorProcess(cluster, log, "--failfast-grace-seconds", "3")
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        # No status yet: created while no operator runs.
        cluster.apply(job("fresh"), NAMESPACE)
        save(cluster, "fresh", "no-status")
        operator.start()
        wait_dj(cluster, NAMESPACE, "fresh", "succeeded", phase("Succeeded"))

        pending = [deployment("waiting", node_selector=UNSCHEDULABLE)]
        cluster.apply(job("waiting", manifests=pending), NAMESPACE)
        wait_dj(cluster, NAMESPACE, "waiting", "deploying", phase("Deploying"))
        save(cluster, "waiting", "deploying")

        cluster.apply(job("steady", stabilitySeconds=120), NAMESPACE)
        wait_dj(cluster, NAMESPACE, "steady", "verifying", phase("Verifying"))
        save(cluster, "steady", "verifying")

        cluster.apply(job("web"), NAMESPACE)
        wait_dj(cluster, NAMESPACE, "web", "succeeded", phase("Succeeded"))
        save(cluster, "web", "succeeded")

        crashing = [deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})]
        cluster.apply(job("api", manifests=crashing), NAMESPACE)
        wait_dj(cluster, NAMESPACE, "api", "failed", phase("Failed"))
        save(cluster, "api", "failed")

        cluster.kubectl(
            "annotate", "dj", "waiting", "-n", NAMESPACE, "deploybell.io/cancel=capture-1"
        )
        wait_dj(cluster, NAMESPACE, "waiting", "canceled", phase("Canceled"))
        save(cluster, "waiting", "canceled")

        # What Argo CD sees between its sync and deploybell's next run.
        operator.stop()
        cluster.apply(job("web", maxWaitSeconds=300), NAMESPACE)
        save(cluster, "web", "succeeded-new-generation")
        cluster.kubectl(
            "annotate", "dj", "api", "-n", NAMESPACE, "deploybell.io/redeploy=capture-1"
        )
        save(cluster, "api", "failed-redeploy-requested")
    finally:
        if not operator.running:
            operator.start()  # it releases the DeployJobs so that the namespace can go
        cluster.kubectl("delete", "namespace", NAMESPACE, "--timeout=90s", check=False)
        operator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
