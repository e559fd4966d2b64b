"""A target cluster's API server goes away mid-run (spec.cluster): the operator, on cluster A,
waits for cluster B within maxWaitSeconds and finishes every run with exactly the messages it
owes. Short (make test): B's kube-apiserver restarted, ~8 s without it. Long (make reliability):
B unreachable for 60 s."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.reliability.receivers import job_names, sent_events, statuses, tally, webhook_arrivals
from tests.support.cluster import ClusterAccess, embedded_kubeconfig, localcluster, wait_for
from tests.support.deploybell import deployment, finished, secret, subscribed, wait_dj
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
LONG = os.environ.get("RELIABILITY_LONG") == "1"
DOWN_SECONDS = 60.0 if LONG else 8.0
TARGET = {"name": "cluster-b", "kubeConfig": {"secretRef": {"name": "b-kubeconfig"}}}


def verifying_announced(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Verifying" and "start" in sent_events(status)


def test_runs_in_the_target_survive_its_api_server_going_away(
    cluster: ClusterAccess,
    cluster_b: ClusterAccess,
    notification_ns: str,
    webhook_peer: WebhookPeer,
) -> None:
    assert cluster_b.local is not None
    ns = notification_ns
    cluster_b.kubectl("create", "namespace", ns)
    cluster.apply(secret("b-kubeconfig", {"value": embedded_kubeconfig(cluster_b, "b")}), ns)
    names = job_names(6)
    # A stability window longer than the outage keeps every run in flight across it.
    window = int(DOWN_SECONDS) + 10
    spec = {"stabilitySeconds": window, "maxWaitSeconds": 600, "cluster": TARGET}
    jobs = [subscribed(n, [deployment(n, 2)], **spec) for n in names]
    cluster.apply(jobs, ns)
    wait_for(
        "every run verifying in B, its start announced",
        lambda: (
            len(found := statuses(cluster, ns)) == len(names)
            and all(verifying_announced(s) for s in found.values())
        ),
        timeout=120,
    )
    stopped = time.monotonic()
    try:
        localcluster.stop_component(cluster_b.local, "kube-apiserver", timeout=5)
        # Created while B is away: its start goes out, its run waits for B.
        late = subscribed("late", [deployment("late")], maxWaitSeconds=600, cluster=TARGET)
        cluster.apply(late, ns)
        waiting = wait_dj(
            cluster, ns, "late", "waiting for B", lambda s: s.get("reason") == "WaitingForCluster"
        )["status"]
        wait_for(
            f"{DOWN_SECONDS:.0f}s without B's API server",
            lambda: time.monotonic() - stopped >= DOWN_SECONDS,
            timeout=DOWN_SECONDS + 10,
            interval=0.5,
        )
    finally:
        localcluster.start_component(cluster_b.local, "kube-apiserver")
    down = time.monotonic() - stopped
    assert "waiting for cluster cluster-b" in waiting["message"], waiting
    for name in [*names, "late"]:
        status = wait_dj(
            cluster, ns, name, "succeeded, messages sent", finished(1, "Succeeded"), timeout=240
        )["status"]
        assert sent_events(status) == {"start", "success"}, status["notifications"]
        assert status["cluster"] == "cluster-b"
    webhook = tally("webhook", webhook_arrivals(webhook_peer, ns, [*names, "late"]))
    print(
        f"\ntarget outage: B's API server away {down:.1f}s with {len(names)} runs in flight in B "
        f"and 1 created meanwhile (it waited: {waiting['message'][:80]!r}); {webhook}"
    )
    assert (webhook.lost, webhook.duplicates, webhook.misordered) == (0, 0, []), webhook
    assert all(s["run"] == 1 for s in statuses(cluster, ns).values())
    assert cluster_b.get("deployment", "late", ns) is not None
