"""Sharding: three shards (default, a, b) share one cluster's DeployJobs by the label
sharding.deploybell.io/key; every run is handled by exactly one shard, counted at the webhook
receiver. Mid-run, some DeployJobs are relabelled to another shard and shard a's active replica
is SIGKILLed (its standby takes over once the killed peer's kopf peering entry expires).

Short (make test): 18 DeployJobs, 6 relabelled. Long (make reliability): 300, 20 relabelled.
Each shard process has its own --cluster-name, so the receiver sees which shard sent a message.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.reliability.receivers import sent_events, statuses, tally, webhook_arrivals
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployment, subscribed, webhook_events
from tests.support.operator import OperatorProcess, acting, cluster_peering
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("no_session_operator")
LONG = os.environ.get("RELIABILITY_LONG") == "1"
COUNT, RELABELLED = (300, 20) if LONG else (18, 6)
STABILITY = 180 if LONG else 30  # every run stays in flight until the relabel and the kill
SHARDS = ("default", "a", "b")
LABEL = "sharding.deploybell.io/key"
LIFETIME = 10  # kopf peering lifetime: how long a SIGKILLed peer still blocks its standby


def shard_flags(shard: str) -> list[str]:
    key = [] if shard == "default" else ["--shard-key", shard]
    return [*key, "--cluster-name", f"shard-{shard}"]


@pytest.fixture
def peering(cluster: ClusterAccess) -> Iterator[str]:
    with cluster_peering(cluster, "deploybell-shard-a") as name:
        yield name


def job(name: str, shard: str) -> dict[str, Any]:
    dj = subscribed(name, [deployment(name)], stabilitySeconds=STABILITY, maxWaitSeconds=900)
    if shard != "default":
        dj["metadata"]["labels"] = {LABEL: shard}
    return dj


class Progress(Counter[str]):
    """How many runs are at which stage; true once every one is verifying, its start sent."""

    def __bool__(self) -> bool:
        return set(self) == {"Verifying+start"} and self.total() == COUNT

    def __repr__(self) -> str:
        return repr(dict(self))


def all_verifying(cluster: ClusterAccess, ns: str) -> Progress:
    found = statuses(cluster, ns).values()
    return Progress(f"{s.get('phase')}+{'+'.join(sorted(sent_events(s)))}" for s in found)


def sender(event: dict[str, Any]) -> str:
    """The shard that sent a CloudEvent: its source is /deploybell/shard-<key>/namespaces/..."""
    return str(event["source"].split("/")[2].removeprefix("shard-"))


def deployjob_watch_selectors(cluster: ClusterAccess, since: str) -> Counter[str]:
    """labelSelector of each DeployJob watch kopf opened since `since` (from the audit log)."""
    assert cluster.local is not None
    found: Counter[str] = Counter()
    for line in cluster.local.log("audit").read_text(errors="replace").splitlines():
        if '"/apis/deploybell.io/v1alpha1/deployjobs?' not in line or "watch=true" not in line:
            continue
        entry = json.loads(line)
        if entry["requestReceivedTimestamp"] < since or not entry["userAgent"].startswith("kopf"):
            continue
        query = entry["requestURI"].split("?", 1)[1]
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        found[unquote(params.get("labelSelector", "(none)"))] += 1
    return found


def test_shards_split_the_jobs_and_hand_them_over(
    cluster: ClusterAccess,
    notification_ns: str,
    webhook_peer: WebhookPeer,
    peering: str,
    tmp_path: Path,
) -> None:
    ns = notification_ns
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    a_peer = ["--peering", peering, "--peering-lifetime", str(LIFETIME)]
    procs = {
        "default": OperatorProcess(cluster, tmp_path / "default.log", *shard_flags("default")),
        "a-active": OperatorProcess(
            cluster, tmp_path / "a1.log", *shard_flags("a"), *a_peer, "--priority", "200"
        ),
        "a-standby": OperatorProcess(
            cluster, tmp_path / "a2.log", *shard_flags("a"), *a_peer, "--priority", "100"
        ),
        "b": OperatorProcess(cluster, tmp_path / "b.log", *shard_flags("b")),
    }
    names = [f"app-{i:03d}" for i in range(COUNT)]
    first = {name: SHARDS[i % 3] for i, name in enumerate(names)}
    moved = {name: SHARDS[(i + 1) % 3] for i, name in enumerate(names[:RELABELLED])}
    final = {**first, **moved}
    began = time.monotonic()
    try:
        procs["a-active"].start()
        wait_for("shard a's first replica acting", lambda: acting(procs["a-active"]))
        # One after the other, from this thread: a child started from a worker thread would get
        # SIGTERM when that thread ends (the operators die with their parent, PR_SET_PDEATHSIG).
        for key in ("a-standby", "default", "b"):
            procs[key].start()
        cluster.apply([job(n, s) for n, s in first.items()], ns)
        wait_for(
            f"all {COUNT} runs verifying, each start announced, none finished",
            lambda: all_verifying(cluster, ns),
            timeout=300 if LONG else 120,
            interval=1.0,
        )
        started = time.monotonic() - began
        assert not acting(procs["a-standby"]), "shard a's standby acted while the active was up"
        for name, shard in moved.items():
            value = f"{LABEL}={shard}" if shard != "default" else f"{LABEL}-"
            cluster.kubectl("label", "dj", name, "-n", ns, value, "--overwrite")
        killed = time.monotonic()
        procs["a-active"].kill()
        wait_for("shard a's standby taking over", lambda: acting(procs["a-standby"]), timeout=120)
        takeover = time.monotonic() - killed
        wait_for(
            "every run succeeded, its messages sent",
            lambda: (
                len(found := statuses(cluster, ns)) == COUNT
                and all(
                    s.get("phase") == "Succeeded" and sent_events(s) == {"start", "success"}
                    for s in found.values()
                )
            ),
            timeout=STABILITY + (300 if LONG else 150),
            interval=1.0,
        )
    finally:
        for proc in procs.values():
            if proc.running:
                proc.stop()
    took = time.monotonic() - began

    webhook = tally("webhook", webhook_arrivals(webhook_peer, ns, names))
    senders: dict[str, Counter[str]] = {s: Counter() for s in SHARDS}
    wrong: list[str] = []
    for name in names:
        for event in webhook_events(webhook_peer, ns, name):
            kind, shard = event["type"].rsplit(".", 1)[1], sender(event)
            senders[shard][kind] += 1
            expected = first[name] if kind == "start" else final[name]
            if shard != expected:
                wrong.append(f"{name} {kind} from {shard}, expected {expected}")
    selectors = deployjob_watch_selectors(cluster, since) if cluster.local else Counter()
    print(
        f"\nshards: {COUNT} DeployJobs over {', '.join(SHARDS)}, {len(moved)} relabelled mid-run, "
        f"shard a's active replica SIGKILLed mid-run (standby acting {takeover:.1f}s later, "
        f"peering lifetime {LIFETIME}s); all started in {started:.0f}s, all done in {took:.0f}s; "
        f"{webhook}; messages per shard: "
        + ", ".join(f"{s}: {dict(c)}" for s, c in senders.items())
        + f"; DeployJob watches by label selector: {dict(selectors)}"
    )
    assert (webhook.lost, webhook.duplicates, webhook.misordered) == (0, 0, []), webhook
    assert wrong == [], wrong[:10]
    assert all(s["run"] == 1 for s in statuses(cluster, ns).values())
    if cluster.local is not None:  # the API server filters: every DeployJob watch is selective
        assert set(selectors) == {f"!{LABEL}", f"{LABEL}=a", f"{LABEL}=b"}, selectors
