"""DeployJob edge cases: stability window, rollback, restarts, bad input, late Notifications."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    configmap,
    deployment,
    events,
    finished,
    ledger,
    notification,
    subscribed,
    wait_dj,
    webhook_events,
    webhook_secret,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
NOTE = "deploy-notification"


def pod_names(cluster: ClusterAccess, namespace: str, app: str) -> list[str]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "name")
    return [line.split("/", 1)[1] for line in out.split()]


def patch_pod_status(cluster: ClusterAccess, namespace: str, pod: str, status: Any) -> None:
    cluster.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=strategic",
        "-p",
        json.dumps({"status": status}),
    )


def test_stability_window_resets_when_a_pod_goes_unready(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    window = 6
    cluster.apply(subscribed("web", [deployment("web")], stabilitySeconds=window), ns)
    wait_dj(cluster, ns, "web", "Verifying", finished(1, "Verifying"))
    [pod] = pod_names(cluster, ns, "web")
    patch_pod_status(cluster, ns, pod, {"conditions": [{"type": "Ready", "status": "False"}]})
    wait_dj(cluster, ns, "web", "back to Deploying", finished(1, "Deploying"))
    patch_pod_status(cluster, ns, pod, {"conditions": [{"type": "Ready", "status": "True"}]})
    restored = time.monotonic()
    wait_dj(
        cluster,
        ns,
        "web",
        "Verifying again",
        lambda s: (
            (s.get("phase") == "Verifying" and "clock reset" in s.get("message", ""))
            or s.get("phase") == "Succeeded"
        ),
    )
    status = wait_dj(cluster, ns, "web", "Succeeded", finished(1, "Succeeded"))["status"]
    assert time.monotonic() - restored >= window - 0.5, "succeeded before a full window"
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]


def test_stability_window_resets_on_a_container_restart(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web")], stabilitySeconds=8), ns)
    wait_dj(cluster, ns, "web", "Verifying", finished(1, "Verifying"))
    [pod] = pod_names(cluster, ns, "web")
    patch_pod_status(cluster, ns, pod, {"containerStatuses": [{"name": "app", "restartCount": 1}]})
    status = wait_dj(
        cluster, ns, "web", "clock reset", lambda s: "clock reset" in s.get("message", "")
    )["status"]
    assert status["phase"] == "Verifying"
    wait_dj(cluster, ns, "web", "Succeeded", finished(1, "Succeeded"))


def test_rollback_on_failure_reapplies_the_last_good_manifests(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web")], rollbackOnFailure=True), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    broken = deployment("web", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(subscribed("web", [broken], rollbackOnFailure=True), ns)
    status = wait_dj(cluster, ns, "web", "run 2 Failed", finished(2, "Failed"))["status"]
    assert status["reason"] == "CrashLoopBackOff"
    assert "rolled back to run 1" in status["message"], status["message"]
    assert status["rollback"]["phase"] == "RolledBack"
    template = cluster.get("deployment", "web", ns)["spec"]["template"]["metadata"]
    assert "deploybell.test/fail" not in (template.get("annotations") or {})
    assert ledger(status, run=2) == [(2, "start", NOTE, "Sent"), (2, "failure", NOTE, "Sent")]
    reasons = [reason for reason, _ in events(cluster, ns, "web")]
    assert "RollingBack" in reasons


def test_operator_restart_mid_run_resumes_without_a_second_start(
    cluster: ClusterAccess,
    notification_ns: str,
    operator: OperatorProcess,
    webhook_peer: WebhookPeer,
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web", 2)], stabilitySeconds=8), ns)
    # Killed once the start is recorded as sent: a kill between the send and that record is the
    # at-least-once window (the same CloudEvent id; test_faults counts it), not this promise.
    wait_dj(
        cluster,
        ns,
        "web",
        "Verifying with the start recorded as sent",
        lambda s: finished(1, "Verifying")(s) and (1, "start", NOTE, "Sent") in ledger(s),
    )
    operator.kill()
    operator.start()
    status = wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))["status"]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    kinds = [e["type"].rsplit(".", 1)[1] for e in webhook_events(webhook_peer, ns, "web")]
    assert kinds == ["start", "success"], kinds


def test_manifests_from_a_configmap(cluster: ClusterAccess, notification_ns: str) -> None:
    ns = notification_ns
    docs = "\n---\n".join(json.dumps(o) for o in (deployment("web"), configmap("settings", {})))
    cluster.apply(configmap("web-manifests", {"manifests.yaml": docs}), ns)
    dj = subscribed("web", [], manifestsFrom=[{"configMapRef": {"name": "web-manifests"}}])
    del dj["spec"]["manifests"]
    cluster.apply(dj, ns)
    status = wait_dj(cluster, ns, "web", "Succeeded", finished(1, "Succeeded"))["status"]
    assert sorted(r["kind"] for r in status["resources"]) == ["ConfigMap", "Deployment"]


# Text in every script a manifest may carry, and the control characters YAML must get escaped.
WORLD = {
    "a": "launch 🚀 done",
    "cjk": "中文 · 日本語 · 한국어",
    "rtl": "שלום · مرحبا",
    "controls": "tab\t bell\x07 esc\x1b del\x7f nel\x85 ls\u2028 ps\u2029 bom\ufeff end",
}


def test_a_manifest_in_any_script_is_applied_as_written(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    """An emoji failed the run ("error converting YAML to JSON: yaml: found invalid Unicode
    character escape code"). The job has no spec.source: its messages name the namespace as the
    environment, as status.history does."""
    ns = notification_ns
    greeting = configmap("greeting", WORLD)
    greeting["metadata"]["annotations"] = {"deploybell.test/note": "🚀 ✅ é 中文 שלום"}
    cluster.apply(subscribed("world", [greeting]), ns)
    status = wait_dj(cluster, ns, "world", "Succeeded", finished(1, "Succeeded"))["status"]
    live = cluster.get("configmap", "greeting", ns)
    assert live is not None
    assert live["data"] == WORLD
    assert live["metadata"]["annotations"]["deploybell.test/note"] == "🚀 ✅ é 中文 שלום"
    assert status["history"][0]["environment"] == ns
    sent = webhook_events(webhook_peer, ns, "world")
    assert [e["data"]["environment"] for e in sent] == [ns, ns], sent


def from_configmap(name: str, text: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    dj = subscribed(name, [], manifestsFrom=[{"configMapRef": {"name": f"{name}-src"}}])
    del dj["spec"]["manifests"]
    source = configmap(f"{name}-src", {"manifests.yaml": text}) if text is not None else None
    return dj, source


@pytest.mark.parametrize(
    ("text", "reason", "fragment"),
    [
        (None, "ConfigMapNotFound", "ConfigMap bad-src not found"),
        ("kind: Deployment\n  metadata: [oops\n", "InvalidManifest", "invalid YAML at line"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "InvalidManifest", "object has no kind"),
        (
            "apiVersion: example.invalid/v1\nkind: Widget\nmetadata: {name: w}\n",
            "UnknownKind",
            "does not know kind Widget",
        ),
    ],
    ids=["missing-configmap", "invalid-yaml", "no-kind", "unknown-kind"],
)
def test_bad_manifests_fail_the_run_with_a_message_naming_the_problem(
    cluster: ClusterAccess, notification_ns: str, text: str | None, reason: str, fragment: str
) -> None:
    dj, source = from_configmap("bad", text)
    if source:
        cluster.apply(source, notification_ns)
    cluster.apply(dj, notification_ns)
    status = wait_dj(cluster, notification_ns, "bad", "Failed", finished(1, "Failed"))["status"]
    assert status["reason"] == reason
    assert fragment in status["message"], status["message"]
    assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, "failure", NOTE, "Sent")]


def test_crd_and_its_custom_resources_in_one_job(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    group = f"{notification_ns}.example.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    gadget = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 3},
    }
    cluster.apply(subscribed("gadgets", [gadget, crd], prune=True), notification_ns)
    status = wait_dj(cluster, notification_ns, "gadgets", "Succeeded", finished(1, "Succeeded"))[
        "status"
    ]
    assert [r["kind"] for r in status["resources"]] == ["CustomResourceDefinition", "Gadget"]
    cluster.kubectl("delete", "dj/gadgets", "-n", notification_ns, "--timeout=60s")
    cluster.kubectl("wait", "--for=delete", f"crd/gadgets.{group}", "--timeout=60s")


def test_a_missing_notification_is_waited_for_not_fatal(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    cluster.apply(webhook_secret(webhook_peer), namespace)
    cluster.apply(subscribed("web", [deployment("web")], notification="later"), namespace)
    status = wait_dj(
        cluster, namespace, "web", "Succeeded", lambda s: s.get("phase") == "Succeeded"
    )["status"]
    assert [e["state"] for e in status["notifications"]] == ["Pending", "Pending"]
    assert "Notification later not found" in status["notifications"][0]["lastError"]
    # Waiting is not "delivered": Unknown, naming the Notification it waits for.
    waiting = delivered_condition(status)
    assert (waiting["status"], waiting["reason"]) == ("Unknown", "NotificationMissing")
    assert "Notification later" in waiting["message"]
    wait_for(
        "a NotificationMissing event",
        lambda: any(r == "NotificationMissing" for r, _ in events(cluster, namespace, "web")),
    )
    cluster.apply(notification("later"), namespace)
    status = wait_dj(
        cluster,
        namespace,
        "web",
        "delivered",
        lambda s: (
            [e["state"] for e in s["notifications"]] == ["Sent", "Sent"]
            and delivered_condition(s)["status"] == "True"
        ),
        timeout=30,
    )["status"]
    assert ledger(status) == [(1, "start", "later", "Sent"), (1, "success", "later", "Sent")]
    assert delivered_condition(status)["reason"] == "Delivered"


def delivered_condition(status: dict[str, Any]) -> dict[str, Any]:
    [condition] = [
        c for c in status.get("conditions") or [] if c["type"] == "NotificationsDelivered"
    ]
    return condition


def test_notification_status_reports_problems_the_schema_cannot(
    cluster: ClusterAccess, namespace: str
) -> None:
    bad = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": "ops"},
        "spec": {"type": "irc", "recipients": ["irc.example.test:99999#ops"]},
    }
    cluster.apply(bad, namespace)
    ready = wait_for(
        "Notification Ready condition",
        lambda: next(
            (
                c
                for c in (cluster.get("notifications.deploybell.io", "ops", namespace) or {})
                .get("status", {})
                .get("conditions", [])
                if c["type"] == "Ready"
            ),
            None,
        ),
    )
    assert ready["status"] == "False"
    assert "99999" in ready["message"], ready
    cluster.apply(notification("fine", "email"), namespace)
    ready = wait_for(
        "valid Notification Ready",
        lambda: next(
            (
                c
                for c in (cluster.get("notifications.deploybell.io", "fine", namespace) or {})
                .get("status", {})
                .get("conditions", [])
                if c["type"] == "Ready"
            ),
            None,
        ),
    )
    assert ready["status"] == "True"
