"""Faults: operator crashes and receiver outages lose no notification and spam no one.

Short variants run under `make test`; `make reliability` (RELIABILITY_LONG=1) runs the long ones
(50 DeployJobs and 5 kills; a 60 s outage). Each test prints its figures.
"""

from __future__ import annotations

import collections
import itertools
import os
import time
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployment, finished, subscribed, wait_dj, webhook_events
from tests.support.operator import OperatorProcess
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
LONG = os.environ.get("RELIABILITY_LONG") == "1"


def job_names(count: int) -> list[str]:
    return [f"app-{i:02d}" for i in range(count)]


def statuses(cluster: ClusterAccess, namespace: str) -> dict[str, dict[str, Any]]:
    import json

    items = json.loads(cluster.kubectl("get", "dj", "-n", namespace, "-o", "json"))["items"]
    return {i["metadata"]["name"]: i.get("status") or {} for i in items}


def sent_events(status: dict[str, Any]) -> set[str]:
    return {e["event"] for e in status.get("notifications") or [] if e.get("state") == "Sent"}


def audit(peer: WebhookPeer, namespace: str, names: list[str]) -> tuple[int, int, int]:
    """(lost, duplicates, duplicates with a different id) over every job's start + outcome."""
    lost = duplicates = mismatched = 0
    for name in names:
        received = webhook_events(peer, namespace, name)
        by_event = collections.defaultdict(list)
        for event in received:
            by_event[event["type"].rsplit(".", 1)[1]].append(event["id"])
        for event in ("start", "success"):
            ids = by_event.get(event, [])
            lost += not ids
            duplicates += max(len(ids) - 1, 0)
            mismatched += len(set(ids)) > 1
        kinds = [e["type"].rsplit(".", 1)[1] for e in received]
        assert kinds.index("start") < kinds.index("success"), (name, kinds)
    return lost, duplicates, mismatched


def test_operator_killed_repeatedly_mid_rollout(
    cluster: ClusterAccess,
    notification_ns: str,
    operator: OperatorProcess,
    webhook_peer: WebhookPeer,
) -> None:
    ns = notification_ns
    count, kills = (50, 5) if LONG else (16, 3)
    names = job_names(count)
    cluster.apply([subscribed(n, [deployment(n)], stabilitySeconds=4) for n in names], ns)
    killed = 0
    # Kill at progress points (a share of the runs has announced its start or finished), so each
    # kill lands while runs are in every phase: applying, verifying, delivering.
    for step in range(1, kills + 1):
        want = count * step // (kills + 1)

        def progressed(want: int = want) -> bool:
            done = sum(len(sent_events(s)) for s in statuses(cluster, ns).values())
            return done >= want

        wait_for(f"{want} messages sent", progressed, timeout=120)
        operator.kill()
        killed += 1
        operator.start()
    wait_for(
        "every run finished with its messages sent",
        lambda: (
            all(
                s.get("phase") == "Succeeded" and sent_events(s) == {"start", "success"}
                for s in statuses(cluster, ns).values()
            )
            and len(statuses(cluster, ns)) == count
        ),
        timeout=300,
    )
    lost, duplicates, mismatched = audit(webhook_peer, ns, names)
    print(
        f"\ncrash: {count} DeployJobs, {killed} SIGKILLs, lost={lost}, "
        f"duplicates={duplicates} (each with the same idempotency key: {mismatched == 0})"
    )
    assert lost == 0
    assert mismatched == 0, "a duplicate must carry the same idempotency key"
    for name in names:
        assert statuses(cluster, ns)[name]["run"] == 1, "a restart must not start a new run"


def test_receiver_outage_delivers_everything_afterwards(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = notification_ns
    outage = 60.0 if LONG else 8.0
    names = job_names(4)
    webhook_peer.stop()
    down_since = time.monotonic()
    try:
        cluster.apply([subscribed(n, [deployment(n)]) for n in names], ns)
        for name in names:
            wait_dj(
                cluster,
                ns,
                name,
                "run done, messages retrying",
                lambda s: (
                    s.get("phase") == "Succeeded"
                    and any(e.get("lastError") for e in s.get("notifications") or [])
                ),
            )
        wait_for(
            f"{outage:.0f}s of outage",
            lambda: time.monotonic() - down_since >= outage,
            timeout=outage + 5,
            interval=0.5,
        )
    finally:
        webhook_peer.start()
    for name in names:
        status = wait_dj(
            cluster,
            ns,
            name,
            "delivered after the outage",
            finished(1, "Succeeded"),
            timeout=outage * 2 + 60,
        )["status"]
        assert sent_events(status) == {"start", "success"}
        # The start message was retried through the outage; the outcome waited behind it.
        start = next(e for e in status["notifications"] if e["event"] == "start")
        assert start["attempts"] >= 2, status["notifications"]
    lost, duplicates, _ = audit(webhook_peer, ns, names)
    print(
        f"\noutage: receiver down {time.monotonic() - down_since:.0f}s, {len(names)} jobs, "
        f"lost={lost}, duplicates={duplicates}"
    )
    assert (lost, duplicates) == (0, 0)


def test_slack_rate_limit_is_honoured(cluster: ClusterAccess, namespace: str) -> None:
    """Slack answers 429 with Retry-After: 3 twice: no request comes before the interval."""
    import threading

    from tests.support.peers.slack import TEST_TOKEN, SlackPeer

    with SlackPeer() as slack:
        slack.rate_limit(calls=2, retry_after=3)
        arrivals: list[float] = []
        stop = threading.Event()

        def clock() -> None:  # timestamps each request as it shows up at the peer
            while not stop.is_set():
                while len(arrivals) < len(slack.calls):
                    arrivals.append(time.monotonic())
                stop.wait(0.02)

        ticker = threading.Thread(target=clock, daemon=True)
        ticker.start()
        cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "slack"},
                    "stringData": {"token": TEST_TOKEN, "apiUrl": slack.base_url},
                },
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": "chat"},
                    "spec": {
                        "type": "slack",
                        "recipients": ["#deploys"],
                        "secretRef": {"name": "slack"},
                    },
                },
                subscribed("web", [deployment("web")], notification="chat"),
            ],
            namespace,
        )
        wait_dj(
            cluster,
            namespace,
            "web",
            "delivered after the rate limit",
            finished(1, "Succeeded"),
            timeout=120,
        )
        stop.set()
        ticker.join(5)
    statuses_ = [call.status for call in slack.calls]
    assert statuses_[:3] == [429, 429, 200], statuses_
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[:3])]
    print(f"\nrate limit: gaps after each 429: {[f'{g:.2f}s' for g in gaps]}")
    assert all(gap >= 3.0 - 0.1 for gap in gaps), gaps
