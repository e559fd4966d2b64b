"""DeployJob runs end to end: the operator as a real process against the real local cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    configmap,
    deployment,
    events,
    finished,
    ledger,
    service,
    subscribed,
    wait_dj,
    webhook_events,
)
from tests.support.operator import ROOT
from tests.support.peers.slack import TEST_TOKEN, SlackPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
NOTE = "deploy-notification"


def test_success_applies_labels_and_notifies_start_then_success(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    manifests = [deployment("web", 3), service("web"), configmap("web-config", {"a": "1"})]
    cluster.apply(subscribed("web", manifests), ns)

    obj = wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    status = obj["status"]
    assert status["reason"] == "RolloutComplete"
    assert {(r["kind"], r["status"]) for r in status["resources"]} == {
        ("Deployment", "Current"),
        ("Service", "Current"),
        ("ConfigMap", "Current"),
    }
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "NotificationsDelivered": "True",
    }
    labels = cluster.get("deployment", "web", ns)["metadata"]["labels"]
    assert labels["deploybell.io/job"] == "web"
    assert labels["deploybell.io/job-namespace"] == ns
    assert labels["deploybell.io/run"] == "1"
    assert cluster.get("deployment", "web", ns)["metadata"].get("finalizers") is None
    cluster.kubectl("wait", "--for=condition=Ready", "dj/web", "-n", ns, "--timeout=10s")
    # Start and success are in the status (run, phase, conditions): no Event repeats them.
    reasons = [reason for reason, _ in events(cluster, ns, "web")]
    assert not [r for r in reasons if r.startswith("Run")], reasons


@pytest.mark.parametrize(
    "kind",
    ["StatefulSet", "DaemonSet", "Job"],
)
def test_other_workload_kinds_succeed(
    cluster: ClusterAccess, notification_ns: str, kind: str
) -> None:
    labels = {"app": "w"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
    if kind == "StatefulSet":
        spec.update(serviceName="w", replicas=2)
    if kind == "Job":
        spec = {"template": {**template, "spec": {**template["spec"], "restartPolicy": "Never"}}}
    group = "batch/v1" if kind == "Job" else "apps/v1"
    manifest = {"apiVersion": group, "kind": kind, "metadata": {"name": "w"}, "spec": spec}
    cluster.apply(subscribed("w", [manifest]), notification_ns)
    obj = wait_dj(cluster, notification_ns, "w", "run 1 Succeeded", finished(1, "Succeeded"))
    assert obj["status"]["resources"][0]["kind"] == kind


def test_progress_deadline_exceeded_fails_the_run(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    stuck = deployment("web", node_selector=UNSCHEDULABLE, progress_deadline=5)
    cluster.apply(subscribed("web", [stuck]), ns)
    status = wait_dj(cluster, ns, "web", "Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "ProgressDeadlineExceeded"
    assert "Deployment web" in status["message"]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "failure", NOTE, "Sent")]
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["status"] == "True"


def test_crashloop_fails_fast_naming_pod_container_and_exit_code(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    crashing = deployment("api", 2, annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(subscribed("api", [crashing], maxWaitSeconds=600), ns)
    status = wait_dj(cluster, ns, "api", "Failed", finished(1, "Failed"), timeout=60)["status"]
    assert status["reason"] == "CrashLoopBackOff"
    message = status["message"]
    assert "pod api-" in message, message
    assert "container app" in message, message
    assert "exit code 1" in message, message


def test_max_wait_exceeded(cluster: ClusterAccess, notification_ns: str) -> None:
    ns = notification_ns
    stuck = deployment("slow", node_selector=UNSCHEDULABLE)
    cluster.apply(subscribed("slow", [stuck], maxWaitSeconds=4), ns)
    status = wait_dj(cluster, ns, "slow", "Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "MaxWaitExceeded"
    assert "maxWaitSeconds=4" in status["message"]
    assert "Deployment slow" in status["message"]


def test_forbidden_under_impersonation(cluster: ClusterAccess, notification_ns: str) -> None:
    ns = notification_ns
    cluster.kubectl("create", "serviceaccount", "deployer", "-n", ns)
    cluster.kubectl(
        "create",
        "role",
        "configmaps-only",
        "-n",
        ns,
        "--verb=get,list,create,patch",
        "--resource=configmaps",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "deployer",
        "-n",
        ns,
        "--role=configmaps-only",
        f"--serviceaccount={ns}:deployer",
    )
    manifests = [configmap("allowed", {"k": "v"}), deployment("web")]
    cluster.apply(subscribed("web", manifests, serviceAccountName="deployer"), ns)
    status = wait_dj(cluster, ns, "web", "Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "Forbidden"
    assert f"system:serviceaccount:{ns}:deployer" in status["message"]
    assert "deployments.apps" in status["message"]
    assert cluster.get("deployment", "web", ns) is None
    assert cluster.get("configmap", "allowed", ns) is not None


def test_missing_service_account_fails_with_its_name(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    cluster.apply(
        subscribed("web", [configmap("c", {})], serviceAccountName="ghost"), notification_ns
    )
    status = wait_dj(cluster, notification_ns, "web", "Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "ServiceAccountNotFound"
    assert "ServiceAccount ghost" in status["message"]


def test_cancel_by_annotation_cancels_only_the_run_in_flight(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "web", "run 1 Deploying", finished(1, "Deploying"))
    cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/cancel=stop-1")
    status = wait_dj(cluster, ns, "web", "Canceled", finished(1, "Canceled"))["status"]
    assert status["reason"] == "Canceled"
    assert status["canceledBy"] == "stop-1"
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "cancel", NOTE, "Sent")]
    # The stale cancel value must not cancel the next run.
    cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/redeploy=again")
    status = wait_dj(cluster, ns, "web", "run 2 Deploying", finished(2, "Deploying"))["status"]
    assert "canceledBy" not in status
    # ...but a new value does.
    cluster.kubectl("annotate", "--overwrite", "dj/web", "-n", ns, "deploybell.io/cancel=stop-2")
    status = wait_dj(cluster, ns, "web", "run 2 Canceled", finished(2, "Canceled"))["status"]
    assert status["canceledBy"] == "stop-2"


def test_new_generation_supersedes_the_run_in_flight(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "web", "run 1 Deploying", finished(1, "Deploying"))
    cluster.apply(subscribed("web", [deployment("web")]), ns)
    status = wait_dj(cluster, ns, "web", "run 2 Succeeded", finished(2, "Succeeded"))["status"]
    first = next(h for h in status["history"] if h["run"] == 1)
    assert (first["phase"], first["reason"]) == ("Canceled", "Superseded")
    assert ledger(status, run=2) == [(2, "start", NOTE, "Sent"), (2, "success", NOTE, "Sent")]
    # Run 1's rows leave the ledger once settled (the history keeps its outcome); what was sent
    # is what the receiver got: run 1's cancel and run 2's start go out together, in any order.
    expected = [(1, "cancel"), (1, "start"), (2, "start"), (2, "success")]
    sent = wait_for(
        "run 1's cancel and run 2's messages received",
        lambda: len(got := received(webhook_peer, ns)) >= len(expected) and got,
    )
    assert sorted(sent) == expected, sent


def received(peer: WebhookPeer, ns: str) -> list[tuple[int, str]]:
    """(run, event) of each message the webhook peer got about dj/web."""
    events = webhook_events(peer, ns, "web")
    return [(e["data"]["run"], e["type"].rsplit(".", 1)[1]) for e in events]


def test_redeploy_annotation_starts_a_new_run(cluster: ClusterAccess, notification_ns: str) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web")]), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/redeploy=2026-11-27")
    status = wait_dj(cluster, ns, "web", "run 2 Succeeded", finished(2, "Succeeded"))["status"]
    assert status["trigger"]["redeploy"] == "2026-11-27"
    assert [h["run"] for h in status["history"]] == [2, 1]
    # Re-applying the unchanged DeployJob does nothing.
    cluster.apply(subscribed("web", [deployment("web")]), ns)
    obj = wait_dj(cluster, ns, "web", "still run 2", finished(2, "Succeeded"), timeout=5)
    assert obj["status"]["run"] == 2


def test_deleting_during_a_run_cancels_it_and_prunes(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = notification_ns
    manifests = [deployment("web", node_selector=UNSCHEDULABLE), configmap("cfg", {})]
    cluster.apply(subscribed("web", manifests, prune=True), ns)
    wait_dj(cluster, ns, "web", "run 1 Deploying", finished(1, "Deploying"))
    cluster.kubectl("delete", "dj/web", "-n", ns, "--timeout=60s")
    reasons = events(cluster, ns, "web")
    assert ("RunCanceled", "run 1: the DeployJob was deleted during the run") in reasons, reasons
    assert cluster.get("configmap", "cfg", ns) is None
    # The cancel message went out before the finalizer let go.
    kinds = [e["type"].rsplit(".", 1)[1] for e in webhook_events(webhook_peer, ns, "web")]
    assert kinds == ["start", "cancel"]


def test_prune_deletes_objects_removed_from_the_manifests(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web"), configmap("old", {})], prune=True), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    cluster.apply(subscribed("web", [deployment("web"), configmap("new", {})], prune=True), ns)
    wait_dj(cluster, ns, "web", "run 2 Succeeded", finished(2, "Succeeded"))
    assert cluster.get("configmap", "old", ns) is None
    assert cluster.get("configmap", "new", ns) is not None
    assert cluster.get("deployment", "web", ns) is not None


def test_seed_example_deploys_and_shows_in_kubectl_get(
    cluster: ClusterAccess, namespace: str
) -> None:
    with SlackPeer() as slack:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "slack-integration"},
                "stringData": {"token": TEST_TOKEN, "apiUrl": slack.base_url},
            },
            namespace,
        )
        cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "seed"))
        wait_dj(
            cluster,
            namespace,
            "deploy-job",
            "both messages sent",
            lambda s: [e[3] for e in ledger(s)] == ["Sent", "Sent"],
        )
        [posted] = [m for m in slack.messages("C0DEPLOYS") if m.get("thread_ts") in (None, m["ts"])]
        assert "succeeded" in str(posted)
    status = wait_dj(cluster, namespace, "deploy-job", "Succeeded", finished(1, "Succeeded"))[
        "status"
    ]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    table = cluster.kubectl("get", "dj", "-n", namespace).splitlines()
    assert table[0].split() == ["NAME", "PHASE", "RUN", "REASON", "AGE"]
    assert table[1].split()[:4] == ["deploy-job", "Succeeded", "1", "RolloutComplete"]
    table = cluster.kubectl("get", "dbn", "-n", namespace).splitlines()
    assert table[0].split() == ["NAME", "TYPE", "READY", "AGE"]
    assert table[1].split()[:3] == ["deploy-notification", "slack", "True"]
