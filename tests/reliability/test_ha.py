"""HA: two operator processes in one kopf peering; the active one is stopped while runs are in
flight. The standby takes over and finishes them: nothing lost, nothing announced twice.

(tests/install/test_ha.py runs the same pair as the chart's pods, between runs; this one stops
the active peer mid-run, with several runs at every stage.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.receivers import job_names, sent_events, statuses, tally, webhook_arrivals
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployment, subscribed
from tests.support.operator import OperatorProcess, acting, cluster_peering
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("no_session_operator")


@pytest.fixture
def peering(cluster: ClusterAccess) -> Iterator[str]:
    with cluster_peering(cluster, "deploybell-reliability") as name:
        yield name


def peer(
    cluster: ClusterAccess, logs: Path, peering: str, name: str, priority: int
) -> OperatorProcess:
    return OperatorProcess(
        cluster,
        logs / f"{name}.log",
        "--peering",
        peering,
        "--priority",
        str(priority),
        "--cluster-name",
        "local-test",
    )


def test_standby_takes_over_mid_run(
    cluster: ClusterAccess,
    notification_ns: str,
    peering: str,
    webhook_peer: WebhookPeer,
    tmp_path: Path,
) -> None:
    ns = notification_ns
    active = peer(cluster, tmp_path, peering, "active", 200)
    standby = peer(cluster, tmp_path, peering, "standby", 100)
    try:
        active.start()
        wait_for("the first peer acting", lambda: acting(active))
        standby.start()
        names = job_names(10)
        cluster.apply([subscribed(n, [deployment(n)], stabilitySeconds=8) for n in names], ns)
        wait_for(
            "half of the runs announced, none finished",
            lambda: sum("start" in sent_events(s) for s in statuses(cluster, ns).values()) >= 5,
            timeout=120,
        )
        assert not acting(standby), "the standby acted while the active peer was up"
        in_flight = sum(
            s.get("phase") not in ("Succeeded", "Failed", "Canceled")
            for s in statuses(cluster, ns).values()
        )
        code = active.stop()
        assert code == 0, active.tail()
        wait_for("the standby taking over", lambda: acting(standby))
        wait_for(
            "every run succeeded, its messages sent",
            lambda: (
                len(found := statuses(cluster, ns)) == len(names)
                and all(
                    s.get("phase") == "Succeeded" and sent_events(s) == {"start", "success"}
                    for s in found.values()
                )
            ),
            timeout=180,
        )
    finally:
        for proc in (active, standby):
            if proc.running:
                proc.stop()
    webhook = tally("webhook", webhook_arrivals(webhook_peer, ns, names))
    print(f"\nHA: active peer stopped with {in_flight} of {len(names)} runs in flight; {webhook}")
    assert (webhook.lost, webhook.duplicates, webhook.misordered) == (0, 0, []), webhook
    assert all(s["run"] == 1 for s in statuses(cluster, ns).values())
