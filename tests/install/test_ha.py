"""HA with kopf peering: two replicas of the chart's Deployment (run here, each as its own pod,
with the chart's command that derives each pod's priority from its name). Exactly one acts:
every run is announced once; when it stops, the other takes over."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.install.helpers import installed_deployment, pod_process, service_account_kubeconfig
from tests.install.scenario import (
    notification_ready,
    running,
    unique_cluster_name,
    wait_announced,
)
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployment, finished, ledger, subscribed, wait_dj
from tests.support.operator import RESUMED, acting
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("no_session_operator")


def peers(cluster: ClusterAccess, name: str) -> dict[str, Any]:
    """identity → {priority, lifetime, lastseen} of the live peers in the ClusterKopfPeering."""
    out = cluster.kubectl("get", "clusterkopfpeerings.kopf.dev", name, "-o", "json")
    return dict(json.loads(out).get("status") or {})


def pod_priority(pod: str) -> int:
    """The kopf priority the chart's command gives a pod: the POSIX cksum of its name."""
    out = subprocess.run(["cksum"], input=pod, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def run_succeeds(
    cluster: ClusterAccess, ns: str, job: str, peer: WebhookPeer, cluster_name: str
) -> None:
    cluster.apply(subscribed(job, [deployment(job)]), ns)
    status = wait_dj(cluster, ns, job, "run 1 Succeeded", finished(1, "Succeeded"))["status"]
    assert ledger(status) == [
        (1, "start", "deploy-notification", "Sent"),
        (1, "success", "deploy-notification", "Sent"),
    ]
    wait_announced(peer, ns, job, cluster_name, ["start", "success"])


def test_one_peer_acts_and_the_other_takes_over(
    cluster: ClusterAccess,
    release: Callable[..., str],
    make_namespace: Callable[..., str],
    notification_ns: str,
    webhook_peer: WebhookPeer,
    logs: Path,
) -> None:
    ns = notification_ns
    system = make_namespace("deploybell-ha")
    cluster_name = unique_cluster_name()
    name = release("deploybell-ha", system, {"replicas": 2, "clusterName": cluster_name})
    kubeconfig = service_account_kubeconfig(cluster, system, name, logs / "sa.kubeconfig")
    chart_deployment = installed_deployment(cluster, name, system)
    # Pod names whose priorities (the chart derives them from the name) we know: the one that
    # will act starts first, so the standby must stay paused from its very start.
    priorities = {pod: pod_priority(pod) for pod in (f"{name}-aaaaa", f"{name}-bbbbb")}
    active, standby = sorted(priorities, key=priorities.__getitem__, reverse=True)
    pods = {
        pod: pod_process(cluster, chart_deployment, pod, kubeconfig, logs / f"{pod}.log")
        for pod in (active, standby)
    }
    with ExitStack() as stack:
        stack.enter_context(running(cluster, pods[active], [ns]))
        wait_for(f"{active} acting", lambda: acting(pods[active]))
        stack.enter_context(running(cluster, pods[standby], [ns]))
        seen = wait_for(
            "both peers in the peering object",
            lambda: (p := peers(cluster, name)).keys() == pods.keys() and p,
        )
        assert {pod: info["priority"] for pod, info in seen.items()} == priorities

        notification_ready(cluster, ns)
        run_succeeds(cluster, ns, "first", webhook_peer, cluster_name)

        assert RESUMED not in pods[standby].log_text(), "the standby acted before the takeover"
        code = pods[active].stop()
        assert code == 0, pods[active].tail()
        wait_for(f"{standby} taking over", lambda: acting(pods[standby]))
        assert peers(cluster, name).keys() == {standby}, "the stopped peer left the peering"
        run_succeeds(cluster, ns, "second", webhook_peer, cluster_name)

    # Exactly once each, also after the takeover (the new active peer resends nothing).
    for job in ("first", "second"):
        wait_announced(webhook_peer, ns, job, cluster_name, ["start", "success"], timeout=1)
