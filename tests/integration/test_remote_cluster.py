"""Remote target clusters (spec.cluster): the operator runs against cluster A, the DeployJobs live
in A and deploy into B, a second local cluster. Objects, impersonation, health, diagnosis and the
rollback snapshot are in B; status, Events and notifications in A."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, embedded_kubeconfig, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    configmap,
    deployment,
    events,
    finished,
    ledger,
    secret,
    subscribed,
    wait_dj,
    webhook_events,
)
from tests.support.operator import OperatorProcess, free_port
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
NOTE = "deploy-notification"
KUBECONFIG_SECRET = "cluster-b-kubeconfig"
TARGET = {"name": "cluster-b", "kubeConfig": {"secretRef": {"name": KUBECONFIG_SECRET}}}


@pytest.fixture
def remote_ns(cluster: ClusterAccess, cluster_b: ClusterAccess, notification_ns: str) -> str:
    """A namespace in A (the Notification, the kubeconfig Secret) and the same one in B."""
    cluster_b.kubectl("create", "namespace", notification_ns)
    cluster.apply(secret(KUBECONFIG_SECRET, {"value": embedded_kubeconfig(cluster_b, "b-admin")}),
                  notification_ns)  # fmt: skip
    return notification_ns


def remote(name: str, manifests: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return subscribed(name, manifests, cluster=TARGET, **spec)


def sources(peer: WebhookPeer, ns: str, job: str) -> list[tuple[str, str]]:
    """(event, CloudEvent source) of each message about a job: the source names the cluster."""
    return [(e["type"].rsplit(".", 1)[1], e["source"]) for e in webhook_events(peer, ns, job)]


def test_a_run_deploys_into_the_target_and_reports_in_the_control_cluster(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = remote_ns
    cluster.apply(remote("web", [deployment("web", 2), configmap("web-config", {"a": "1"})]), ns)
    status = wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))["status"]
    assert status["cluster"] == "cluster-b"
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    there = cluster_b.get("deployment", "web", ns)
    assert there is not None
    assert there["metadata"]["labels"]["deploybell.io/job"] == "web"
    assert there["status"]["readyReplicas"] == 2
    assert cluster.get("deployment", "web", ns) is None, "applied to the control cluster too"
    assert cluster.get("configmap", "web-config", ns) is None
    where = f"/deploybell/cluster-b/namespaces/{ns}/deployjobs/web"
    assert sources(webhook_peer, ns, "web") == [("start", where), ("success", where)]
    success = webhook_events(webhook_peer, ns, "web")[-1]["data"]
    assert success["cluster"] == "cluster-b"
    assert success["title"].endswith("succeeded on cluster-b (run 1)")


def test_a_failure_is_diagnosed_from_the_target(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = remote_ns
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(remote("api", [crashing]), ns)
    status = wait_dj(cluster, ns, "api", "run 1 Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "CrashLoopBackOff", status
    pods = status["diagnosis"]["pods"]
    assert pods, status["diagnosis"]
    pod = pods[0]["pod"]
    assert pod.startswith("api-")
    assert cluster_b.get("pod", pod, ns) is not None, "the diagnosed pod is not in cluster B"
    failure = webhook_events(webhook_peer, ns, "api")[-1]["data"]
    assert failure["event"] == "failure"
    assert [p["pod"] for p in failure["pods"]] == [p["pod"] for p in pods]
    assert "RunFailed" in {reason for reason, _ in events(cluster, ns, "api")}


def test_cancel_a_run_in_the_target(cluster: ClusterAccess, remote_ns: str) -> None:
    ns = remote_ns
    cluster.apply(remote("slow", [deployment("slow", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "slow", "start sent", lambda s: (1, "start", NOTE, "Sent") in ledger(s))
    cluster.kubectl("annotate", "dj", "slow", "-n", ns, "deploybell.io/cancel=stop")
    status = wait_dj(cluster, ns, "slow", "run 1 Canceled", finished(1, "Canceled"))["status"]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "cancel", NOTE, "Sent")]


def test_rollback_happens_in_the_target_and_its_snapshot_leaves_with_the_job(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str
) -> None:
    ns = remote_ns
    cluster.apply(remote("web", [deployment("web")], rollbackOnFailure=True), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    snapshot = "web-deploybell-last-good"
    wait_for("the snapshot in cluster B", lambda: cluster_b.get("secret", snapshot, ns))
    assert not (cluster_b.get("secret", snapshot, ns) or {})["metadata"].get("ownerReferences")
    assert cluster.get("secret", snapshot, ns) is None
    broken = deployment("web", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(remote("web", [broken], rollbackOnFailure=True), ns)
    status = wait_dj(cluster, ns, "web", "run 2 Failed", finished(2, "Failed"))["status"]
    assert "rolled back to run 1" in status["message"], status["message"]
    template = cluster_b.get("deployment", "web", ns)["spec"]["template"]["metadata"]
    assert "deploybell.test/fail" not in (template.get("annotations") or {})
    cluster.kubectl("delete", "dj", "web", "-n", ns, "--wait=true", "--timeout=60s")
    wait_for(
        "the snapshot deleted from cluster B", lambda: not cluster_b.get("secret", snapshot, ns)
    )


def test_impersonation_uses_a_service_account_of_the_target(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str
) -> None:
    ns = remote_ns
    # In B the ServiceAccount may manage ConfigMaps only; in A it does not exist at all.
    cluster_b.kubectl("create", "serviceaccount", "deployer", "-n", ns)
    cluster_b.kubectl("create", "role", "cm", "-n", ns, "--verb=*", "--resource=configmaps")
    cluster_b.kubectl("create", "rolebinding", "cm", "-n", ns, "--role=cm",
                      f"--serviceaccount={ns}:deployer")  # fmt: skip
    allowed = remote("cm", [configmap("settings", {"a": "1"})], serviceAccountName="deployer")
    cluster.apply(allowed, ns)
    wait_dj(cluster, ns, "cm", "run 1 Succeeded", finished(1, "Succeeded"))
    cluster.apply(remote("web", [deployment("web")], serviceAccountName="deployer"), ns)
    status = wait_dj(cluster, ns, "web", "run 1 Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "Forbidden", status
    assert f"as system:serviceaccount:{ns}:deployer" in status["message"]
    assert cluster_b.get("deployment", "web", ns) is None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-secret", "Secret ghost not found in namespace"),
        ("missing-key", "key value: no such key (keys: config)"),
        ("exec-plugin", "users[deploybell].user.exec: runs a program"),
        ("token-file", "users[deploybell].user.tokenFile: names a file"),
    ],
)
def test_a_bad_kubeconfig_fails_the_run_and_notifications_still_go_out(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str, case: str, expected: str
) -> None:
    ns = remote_ns
    good = json.loads(embedded_kubeconfig(cluster_b, "b"))
    user = good["users"][0]["user"]
    if case == "exec-plugin":
        plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh"}
        good["users"][0]["user"] = {"exec": plugin}
    elif case == "token-file":
        user.clear()
        user["tokenFile"] = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    data = {"config" if case == "missing-key" else "value": json.dumps(good)}
    cluster.apply(secret("bad-kubeconfig", data), ns)
    ref = {"name": "ghost" if case == "missing-secret" else "bad-kubeconfig"}
    cluster.apply(
        subscribed("web", [deployment("web")], cluster={"kubeConfig": {"secretRef": ref}}), ns
    )
    status = wait_dj(cluster, ns, "web", "run 1 Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "InvalidKubeConfig", status
    assert expected in status["message"], status["message"]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "failure", NOTE, "Sent")]


def test_an_untrusted_certificate_and_a_closed_port_fail_as_unreachable(
    cluster: ClusterAccess, cluster_b: ClusterAccess, remote_ns: str
) -> None:
    ns = remote_ns
    assert cluster.local is not None
    wrong_ca = (cluster.local.state / "pki" / "ca.crt").read_bytes()  # A's CA, B's server
    closed = json.loads(embedded_kubeconfig(cluster_b, "b"))
    closed["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    cluster.apply([secret("wrong-ca", {"value": embedded_kubeconfig(cluster_b, "b", ca=wrong_ca)}),
                   secret("closed", {"value": json.dumps(closed)})], ns)  # fmt: skip
    began = time.monotonic()
    untrusted = {"kubeConfig": {"secretRef": {"name": "wrong-ca"}}}
    nowhere = {"name": "nowhere", "kubeConfig": {"secretRef": {"name": "closed"}}}
    cluster.apply(
        [
            subscribed("tls", [deployment("tls")], cluster=untrusted),
            subscribed("gone", [deployment("gone")], maxWaitSeconds=6, cluster=nowhere),
        ],
        ns,
    )
    tls = wait_dj(cluster, ns, "tls", "run 1 Failed", finished(1, "Failed"))["status"]
    assert tls["reason"] == "ClusterUnreachable", tls
    assert "TLS certificate does not verify" in tls["message"], tls["message"]
    waiting = wait_dj(
        cluster, ns, "gone", "waiting", lambda s: s.get("reason") == "WaitingForCluster"
    )
    assert "waiting for cluster nowhere" in waiting["status"]["message"]
    gone = wait_dj(cluster, ns, "gone", "run 1 Failed", finished(1, "Failed"))["status"]
    took = time.monotonic() - began
    assert gone["reason"] == "ClusterUnreachable", gone
    assert "did not answer within maxWaitSeconds=6" in gone["message"], gone["message"]
    assert took >= 6, took
    for job in ("tls", "gone"):
        assert ledger(get_status(cluster, ns, job)) == [
            (1, "start", NOTE, "Sent"),
            (1, "failure", NOTE, "Sent"),
        ]


def get_status(cluster: ClusterAccess, ns: str, job: str) -> dict[str, Any]:
    return dict((cluster.get("dj", job, ns) or {}).get("status") or {})


def service_account_token(target: ClusterAccess, ns: str, name: str) -> str:
    target.kubectl("create", "serviceaccount", name, "-n", ns)
    target.kubectl("create", "clusterrolebinding", f"{ns}-{name}", "--clusterrole=cluster-admin",
                   f"--serviceaccount={ns}:{name}")  # fmt: skip
    return target.kubectl("create", "token", name, "-n", ns, "--duration=1h").strip()


def target_clusters(operator: OperatorProcess) -> float:
    """The operator's gauge of open target-cluster clients."""
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    line = next(x for x in text.splitlines() if x.startswith("deploybell_target_clusters "))
    return float(line.split()[-1])


def test_jobs_share_one_client_and_a_rotated_kubeconfig_is_used_mid_run(
    cluster: ClusterAccess,
    cluster_b: ClusterAccess,
    remote_ns: str,
    operator: OperatorProcess,
) -> None:
    ns = remote_ns
    old_sa, new_sa = (f"deploybell-{uuid.uuid4().hex[:4]}" for _ in range(2))
    old = service_account_token(cluster_b, ns, old_sa)
    cluster.apply(secret("rotating", {"value": embedded_kubeconfig(cluster_b, "b", token=old)}), ns)
    target = {"kubeConfig": {"secretRef": {"name": "rotating"}}}
    names = ["one", "two"]
    jobs = [subscribed(n, [deployment(n)], stabilitySeconds=15, cluster=target) for n in names]
    cluster.apply(jobs, ns)
    for name in names:
        wait_dj(cluster, ns, name, "Verifying", finished(1, "Verifying"))
    assert target_clusters(operator) == 1, "two DeployJobs on one target opened two clients"

    # Rotation mid-run: a new identity's token, and the old identity deleted (its token dies).
    mark = len(operator.log_text())
    new = service_account_token(cluster_b, ns, new_sa)
    cluster.apply(secret("rotating", {"value": embedded_kubeconfig(cluster_b, "b", token=new)}), ns)
    cluster_b.kubectl("delete", "serviceaccount", old_sa, "-n", ns)
    wait_for("the old token refused", lambda: refused(cluster_b, old))
    for name in names:
        status = wait_dj(cluster, ns, name, "run 1 Succeeded", finished(1, "Succeeded"))["status"]
        assert status["cluster"] == "b"  # the kubeconfig's current context
        assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    # The runs moved to a client with the new credentials while in flight.
    assert "opened a client to target cluster" in operator.log_text()[mark:], operator.tail()
    wait_for("the target client closed after the runs", lambda: target_clusters(operator) == 0)
    cluster.kubectl("annotate", "dj", "one", "-n", ns, "deploybell.io/redeploy=again")
    wait_dj(cluster, ns, "one", "run 2 Succeeded", finished(2, "Succeeded"))
    labels = cluster_b.get("deployment", "one", ns)["metadata"]["labels"]
    assert labels["deploybell.io/run"] == "2"


def refused(target: ClusterAccess, token: str) -> bool:
    """The API server answers 401 to this bearer token."""
    assert target.local is not None
    context = ssl.create_default_context(cafile=str(target.local.state / "pki" / "ca.crt"))
    url = f"{target.local.server}/api"  # always https, to the local cluster on loopback
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=context, timeout=5):  # noqa: S310
            return False
    except urllib.error.HTTPError as e:
        return e.code == 401


def test_objects_without_a_target_namespace_in_b_fail_clearly(
    cluster: ClusterAccess, remote_ns: str
) -> None:
    ns = remote_ns
    cluster.apply(remote("elsewhere", [configmap("x", {})], targetNamespace="no-such-ns-in-b"), ns)
    status = wait_dj(cluster, ns, "elsewhere", "run 1 Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "ApplyFailed", status
    assert "no-such-ns-in-b" in status["message"]
