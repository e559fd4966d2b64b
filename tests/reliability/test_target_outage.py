"""A target cluster goes away mid-run (spec.cluster): the operator, on cluster A, waits for
cluster B within maxWaitSeconds and finishes every run with exactly the messages it owes.

- B's kube-apiserver restarted (~8 s without it; etcd keeps the data), in `make test`;
- B unreachable for 60 s (`make reliability`): a partition between the operator and B, made by a
  TCP proxy the kubeconfig points at, which resets every connection and refuses new ones while B
  itself keeps running. (Stopping B's API server for 60 s instead would make its kwok nodes miss
  their heartbeats, and their pods unready, which is a test of kwok.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.reliability.receivers import job_names, sent_events, statuses, tally, webhook_arrivals
from tests.support.cluster import ClusterAccess, embedded_kubeconfig, localcluster, wait_for
from tests.support.deploybell import deployment, finished, secret, subscribed, wait_dj
from tests.support.peers.webhook import WebhookPeer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.usefixtures("operator")
LONG = os.environ.get("RELIABILITY_LONG") == "1"
TARGET = {"name": "cluster-b", "kubeConfig": {"secretRef": {"name": "b-kubeconfig"}}}


def verifying_announced(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Verifying" and "start" in sent_events(status)


@pytest.fixture
def b_proxy(cluster_b: ClusterAccess) -> Iterator[TcpProxy]:
    assert cluster_b.local is not None
    with TcpProxy(cluster_b.local.ports["apiserver"]) as proxy:
        yield proxy


def outage(
    cluster: ClusterAccess,
    ns: str,
    webhook_peer: WebhookPeer,
    down_seconds: float,
    go: Callable[[], None],
    back: Callable[[], None],
    label: str,
) -> None:
    """Runs in flight in B, B goes away (`go`), a DeployJob is created meanwhile, B comes back
    (`back`): every run succeeds, each message arrives once, start before outcome."""
    names = job_names(6)
    # A stability window longer than the outage keeps every run in flight across it.
    spec = {"stabilitySeconds": int(down_seconds) + 10, "maxWaitSeconds": 600, "cluster": TARGET}
    cluster.apply([subscribed(n, [deployment(n, 2)], **spec) for n in names], ns)
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
        go()
        # Created while B is away: its start goes out, its run waits for B.
        cluster.apply(
            subscribed("late", [deployment("late")], maxWaitSeconds=600, cluster=TARGET), ns
        )
        waiting = wait_dj(
            cluster, ns, "late", "waiting for B", lambda s: s.get("reason") == "WaitingForCluster"
        )["status"]
        wait_for(
            f"{down_seconds:.0f}s without B",
            lambda: time.monotonic() - stopped >= down_seconds,
            timeout=down_seconds + 10,
            interval=0.5,
        )
    finally:
        back()
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
        f"\ntarget outage ({label}): B away {down:.1f}s with {len(names)} runs in flight in B "
        f"and 1 created meanwhile (it waited: {waiting['message'][:90]!r}); {webhook}"
    )
    assert (webhook.lost, webhook.duplicates, webhook.misordered) == (0, 0, []), webhook
    assert all(s["run"] == 1 for s in statuses(cluster, ns).values())


def test_runs_in_the_target_survive_its_api_server_restarting(
    cluster: ClusterAccess,
    cluster_b: ClusterAccess,
    notification_ns: str,
    webhook_peer: WebhookPeer,
) -> None:
    local = cluster_b.local
    assert local is not None
    ns = notification_ns
    cluster_b.kubectl("create", "namespace", ns)
    cluster.apply(secret("b-kubeconfig", {"value": embedded_kubeconfig(cluster_b, "b")}), ns)
    outage(
        cluster,
        ns,
        webhook_peer,
        8.0,
        lambda: localcluster.stop_component(local, "kube-apiserver", timeout=5),
        lambda: localcluster.start_component(local, "kube-apiserver"),
        "kube-apiserver restarted",
    )


@pytest.mark.skipif(not LONG, reason="60 s partition: make reliability (RELIABILITY_LONG=1)")
def test_runs_in_the_target_survive_it_being_unreachable_for_a_minute(
    cluster: ClusterAccess,
    cluster_b: ClusterAccess,
    notification_ns: str,
    webhook_peer: WebhookPeer,
    b_proxy: TcpProxy,
) -> None:
    ns = notification_ns
    cluster_b.kubectl("create", "namespace", ns)
    config = embedded_kubeconfig(cluster_b, "b").replace(
        f":{b_proxy.target_port}", f":{b_proxy.port}"
    )
    cluster.apply(secret("b-kubeconfig", {"value": config}), ns)
    outage(cluster, ns, webhook_peer, 60.0, b_proxy.cut, b_proxy.restore, "partition")
    assert b_proxy.connections > 0
