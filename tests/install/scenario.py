"""The core scenario every install mode must pass: a run that succeeds, one that fails, one that
is canceled, each announced to a webhook (start, then its outcome) exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from tests.support.cluster import ClusterAccess, condition, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    configmap,
    deployment,
    finished,
    ledger,
    service,
    subscribed,
    wait_dj,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.webhook import WebhookPeer, WebhookRequest

NOTE = "deploy-notification"
CRASH = {"deploybell.test/fail": "CrashLoopBackOff"}
OUTCOMES = {
    "ok": ("Succeeded", "success"),
    "sourced": ("Succeeded", "success"),
    "crash": ("Failed", "failure"),
    "stop": ("Canceled", "cancel"),
}


def unique_cluster_name() -> str:
    """A cluster name (in every message) that tells this test's operators' messages apart."""
    return f"install-{uuid.uuid4().hex[:6]}"


def announced(
    received: Iterable[WebhookRequest], namespace: str, job: str, cluster_name: str
) -> list[str]:
    """The events (start, success, ...) the webhook received about one DeployJob from the
    operators configured with `cluster_name`, in order."""
    return [
        str(r.json["type"]).rsplit(".", 1)[-1]
        for r in received
        if isinstance(r.json, dict)
        and r.json.get("subject") == f"{namespace}/{job}"
        and (r.data or {}).get("cluster") == cluster_name
    ]


def wait_announced(
    peer: WebhookPeer,
    namespace: str,
    job: str,
    cluster_name: str,
    events: list[str],
    timeout: float = 60,
) -> None:
    peer.wait_for(
        lambda got: announced(got, namespace, job, cluster_name) == events,
        timeout=timeout,
        what=f"{events} about {namespace}/{job} from {cluster_name}",
    )


def notification_ready(cluster: ClusterAccess, namespace: str) -> None:
    def ready() -> dict[str, Any] | None:
        obj = cluster.get("notifications.deploybell.io", NOTE, namespace)
        found = condition(obj, "Ready")
        return found if found and found.get("status") == "True" else None

    wait_for(f"Notification {NOTE} Ready", ready, timeout=90)


def sourced(snapshot: bool) -> list[dict[str, Any]]:
    """A DeployJob whose manifests come from a ConfigMap (a Deployment and a Service, which is
    not watched and so read back), and the ConfigMap."""
    text = yaml.safe_dump_all([deployment("sourced"), service("sourced")])
    job = subscribed(
        "sourced",
        [],
        manifestsFrom=[{"configMapRef": {"name": "sourced-manifests", "key": "all.yaml"}}],
        rollbackOnFailure=snapshot,
    )
    del job["spec"]["manifests"]
    return [configmap("sourced-manifests", {"all.yaml": text}), job]


def core_scenario(
    cluster: ClusterAccess,
    namespace: str,
    peer: WebhookPeer,
    cluster_name: str,
    snapshot: bool = True,
) -> None:
    """Success (inline, and from a ConfigMap), failure (a crash-looping pod) and cancel, each
    notified through a webhook; with `snapshot`, the last good manifests are kept in a Secret."""
    notification_ready(cluster, namespace)
    cluster.apply(
        [
            subscribed("ok", [deployment("ok", 2)]),
            subscribed("crash", [deployment("crash", annotations=CRASH)]),
            subscribed("stop", [deployment("stop", node_selector=UNSCHEDULABLE)]),
            *sourced(snapshot),
        ],
        namespace,
    )
    wait_dj(cluster, namespace, "stop", "run 1 Deploying", finished(1, "Deploying"), timeout=120)
    cluster.kubectl("annotate", "dj/stop", "-n", namespace, "deploybell.io/cancel=install-test")
    for job, (phase, event) in OUTCOMES.items():
        status = wait_dj(
            cluster, namespace, job, f"run 1 {phase}", finished(1, phase), timeout=180
        )["status"]
        assert ledger(status) == [(1, "start", NOTE, "Sent"), (1, event, NOTE, "Sent")], job
        if job == "crash":
            assert status["reason"] == "CrashLoopBackOff", status
        if job == "sourced":
            kinds = {(r["kind"], r["status"]) for r in status["resources"]}
            assert kinds == {("Deployment", "Current"), ("Service", "Current")}, status
        wait_announced(peer, namespace, job, cluster_name, ["start", event])
    if snapshot:
        wait_for(
            "the rollback snapshot Secret",
            lambda: cluster.get("secret", "sourced-deploybell-last-good", namespace),
        )


@contextmanager
def running(
    cluster: ClusterAccess, proc: OperatorProcess, namespaces: Iterable[str]
) -> Iterator[OperatorProcess]:
    """The operator runs for the block; on the way out it first lets go of the DeployJobs
    (their finalizers), so that the test's namespaces can be deleted, then stops on SIGTERM."""
    proc.start()
    try:
        yield proc
    finally:
        if proc.running:
            for ns in namespaces:
                cluster.kubectl("delete", "deployjobs.deploybell.io", "--all", "-n", ns,
                                "--timeout=90s", check=False)  # fmt: skip
            code = proc.stop()
        else:  # stopped by the test, or crashed
            code = proc.proc.returncode if proc.proc else None
    assert code == 0, f"operator exited {code}:\n{proc.tail()}"


def assert_no_denials(proc: OperatorProcess, user: str) -> None:
    """Nothing the operator did as itself was forbidden: its RBAC is complete (the API server
    names the denied user; kopf says when it may not list or watch)."""
    log = proc.log_text()
    for sign in (f'User "{user}"', "Not enough permissions"):
        assert sign not in log, f"{sign!r} in the operator's log:\n{proc.tail(120)}"
