"""API server trouble: kube-apiserver stops mid-run and starts again (etcd keeps the data).

The operator's watches break; when they come back their resource versions are older than the new
API server's watch cache, which answers `410 Gone`: kopf lists again and goes on. The runs in
flight finish with exactly the messages they owe, and a DeployJob created afterwards is seen.
This module runs its own operator with -v, so that kopf's debug line about the restarted watch
shows in the log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.receivers import job_names, sent_events, statuses, tally, webhook_arrivals
from tests.support.cluster import ClusterAccess, localcluster, wait_for
from tests.support.deploybell import deployment, finished, subscribed, wait_dj
from tests.support.operator import OperatorProcess
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("no_session_operator")
DOWN_SECONDS = 5.0
WATCH_RESTARTED = re.compile(r"Restarting the watch-stream for (\S+)")


def verifying_announced(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Verifying" and "start" in sent_events(status)


@pytest.fixture(scope="module")
def verbose_operator(
    cluster: ClusterAccess,
    crds: None,
    no_session_operator: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator-v") / "operator.log"
    proc = OperatorProcess(cluster, log, "-v", "--cluster-name", "local-test")
    proc.start()
    yield proc
    if proc.running:
        code = proc.stop()
        assert code == 0, f"operator exited {code} on SIGTERM:\n{proc.tail()}"


def test_runs_complete_across_an_apiserver_restart(
    cluster: ClusterAccess,
    notification_ns: str,
    verbose_operator: OperatorProcess,
    webhook_peer: WebhookPeer,
) -> None:
    if cluster.local is None:
        pytest.skip(
            "this test stops and restarts kube-apiserver, which only the local cluster from "
            "hack/cluster allows; KUBECONFIG names another cluster"
        )
    ns = notification_ns
    names = job_names(6)
    # A long stability window keeps every run in flight (Verifying) across the restart.
    cluster.apply([subscribed(n, [deployment(n, 2)], stabilitySeconds=20) for n in names], ns)
    wait_for(
        "every run verifying, its start announced",
        lambda: (
            len(found := statuses(cluster, ns)) == len(names)
            and all(verifying_announced(s) for s in found.values())
        ),
        timeout=120,
    )
    log_mark = len(verbose_operator.log_text())
    stopped = time.monotonic()
    try:
        localcluster.stop_component(cluster.local, "kube-apiserver", timeout=5)
        gone = time.monotonic()
        wait_for(
            f"{DOWN_SECONDS:.0f}s without an API server",
            lambda: time.monotonic() - gone >= DOWN_SECONDS,
            timeout=DOWN_SECONDS + 5,
            interval=0.5,
        )
        assert verbose_operator.running, verbose_operator.tail()
    finally:
        localcluster.start_component(cluster.local, "kube-apiserver")
    down = time.monotonic() - stopped

    # Created after the restart: only a working DeployJob watch can see it.
    cluster.apply(subscribed("after", [deployment("after")]), ns)
    for name in [*names, "after"]:
        status = wait_dj(
            cluster, ns, name, "succeeded, messages sent", finished(1, "Succeeded"), timeout=180
        )["status"]
        assert sent_events(status) == {"start", "success"}, status["notifications"]
    webhook = tally("webhook", webhook_arrivals(webhook_peer, ns, [*names, "after"]))
    restarted = sorted(set(WATCH_RESTARTED.findall(verbose_operator.log_text()[log_mark:])))
    print(
        f"\napiserver: {down:.1f}s from SIGTERM to ready again ({DOWN_SECONDS:.0f}s with no "
        f"process) with {len(names)} runs in flight; {webhook}; "
        f"watches restarted after 410 Gone: {', '.join(restarted)}"
    )
    assert (webhook.lost, webhook.duplicates, webhook.misordered) == (0, 0, []), webhook
    assert restarted, "no watch was restarted after 410 Gone"
    assert all(s["run"] == 1 for s in statuses(cluster, ns).values())
