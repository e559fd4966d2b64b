"""End to end: the operator delivers DeployJob runs to Mattermost (REST API), Telegram, PagerDuty
and apprise peers — start, success, failure and cancel — and the in-place edits and threads
survive an operator restart between start and outcome."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    delivered,
    deployment,
    notifying,
    secret,
    sent_everywhere,
    start_refs,
    wait_dj,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.apprise import AppriseJsonPeer
from tests.support.peers.mattermost import TEAM, MattermostPeer
from tests.support.peers.pagerduty import PagerdutyPeer
from tests.support.peers.telegram import GROUP, TelegramPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("mattermost", "telegram", "pagerduty", "apprise")
all_sent = functools.partial(sent_everywhere, TYPES)
job = functools.partial(notifying, TYPES)


@dataclass
class Peers:
    mattermost: MattermostPeer
    telegram: TelegramPeer
    pagerduty: PagerdutyPeer
    apprise: AppriseJsonPeer


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with (
        MattermostPeer() as mattermost,
        TelegramPeer() as telegram,
        PagerdutyPeer() as pagerduty,
        AppriseJsonPeer() as apprise,
    ):
        yield Peers(mattermost, telegram, pagerduty, apprise)


def notification(type_: str, recipients: list[str], **options: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "secretRef": {"name": type_}}
    if recipients:
        spec["recipients"] = recipients
    if options:
        spec[type_] = options
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": spec,
    }


def setup(cluster: ClusterAccess, ns: str, peers: Peers) -> None:
    cluster.apply(
        [
            secret("mattermost", peers.mattermost.secret()),
            secret("telegram", peers.telegram.secret()),
            secret("pagerduty", peers.pagerduty.secret()),
            secret("apprise", peers.apprise.secret()),
            notification("mattermost", [f"#{TEAM}/deploys"]),
            notification("telegram", [str(GROUP)]),
            notification("pagerduty", [], alertOnFailure=True),
            notification("apprise", []),
        ],
        ns,
    )


def about(texts: list[str], ns: str, job_: str) -> list[str]:
    return [t for t in texts if f"{ns}/{job_}" in t]


def test_success_after_a_restart_edits_and_threads_in_place(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    cluster.apply(job("web", [deployment("web")], stabilitySeconds=6), ns)
    status = wait_dj(
        cluster,
        ns,
        "web",
        "start sent, verifying",
        lambda s: s.get("phase") == "Verifying" and delivered(s, 1, "start") == set(TYPES),
    )["status"]
    post, message = start_refs(status, 1, "mattermost"), start_refs(status, 1, "telegram")
    assert set(post) == {"channel", "post"}
    assert message == {"chat": str(GROUP), "message": message["message"]}
    operator.kill()
    operator.start()
    wait_dj(cluster, ns, "web", "success sent", all_sent(1, "success"), timeout=120)

    # Mattermost: the start post now shows the outcome, and the outcome is in its thread.
    root = peers.mattermost.posts[post["post"]]
    assert f"{ns}/web succeeded" in root.visible()
    [reply] = peers.mattermost.replies(post["post"])
    assert f"{ns}/web succeeded" in reply.visible()
    assert len([p for p in peers.mattermost.visible_posts() if f"{ns}/web" in p.visible()]) == 2
    # Telegram: one message, edited.
    [shown] = about(peers.telegram.visible(), ns, "web")
    assert f"{ns}/web succeeded" in shown
    # PagerDuty: two change events, no alert; apprise: two messages.
    changes = about(peers.pagerduty.visible(), ns, "web")
    assert [("started" in c, "succeeded" in c) for c in changes] == [(True, False), (False, True)]
    assert peers.pagerduty.alert(f"{ns}/web") is None
    heard = about(peers.apprise.visible(), ns, "web")
    assert [("started" in t, "succeeded" in t) for t in heard] == [(True, False), (False, True)]


def test_failure_triggers_an_alert_and_the_next_success_resolves_it(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(job("api", [crashing]), ns)
    status = wait_dj(
        cluster,
        ns,
        "api",
        "failure sent everywhere",
        all_sent(1, "failure"),
        timeout=120,
    )["status"]
    pod = status["diagnosis"]["pods"][0]["pod"]
    alert = peers.pagerduty.alert(f"{ns}/api")
    assert alert is not None
    assert alert.status == "triggered"
    assert pod in str(peers.pagerduty.changes[-1])
    [shown] = about(peers.telegram.visible(), ns, "api")
    assert pod in shown
    [root] = [
        p for p in peers.mattermost.visible_posts() if f"{ns}/api" in p.visible() and not p.root_id
    ]
    assert pod in root.visible(), "the start post, edited to show the failure"
    failure = about(peers.apprise.visible(), ns, "api")[-1]
    assert pod in failure

    cluster.apply(job("api", [deployment("api")]), ns)  # fixed: run 2 succeeds
    wait_dj(
        cluster,
        ns,
        "api",
        "run 2 sent everywhere",
        all_sent(2, "success"),
        timeout=120,
    )
    wait_for("the alert resolved", lambda: alert.status == "resolved")


def test_cancel_is_announced(cluster: ClusterAccess, namespace: str, peers: Peers) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    cluster.apply(job("slow", [deployment("slow", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "slow", "start sent", lambda s: delivered(s, 1, "start") == set(TYPES))
    cluster.kubectl("annotate", "dj/slow", "-n", ns, "deploybell.io/cancel=now")
    wait_dj(cluster, ns, "slow", "cancel sent", all_sent(1, "cancel"))
    assert "was canceled" in about(peers.telegram.visible(), ns, "slow")[0]
    assert "was canceled" in about(peers.pagerduty.visible(), ns, "slow")[-1]
    assert "was canceled" in about(peers.apprise.visible(), ns, "slow")[-1]
    canceled = [p for p in peers.mattermost.visible_posts() if f"{ns}/slow" in p.visible()]
    assert all("was canceled" in p.visible() for p in canceled)


def test_a_mattermost_bot_without_recipients_is_not_ready(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    cluster.apply(
        [secret("mattermost", peers.mattermost.secret()), notification("mattermost", [])], namespace
    )

    def ready() -> dict[str, Any] | None:
        found = cluster.get("notifications.deploybell.io", "mattermost", namespace) or {}
        conditions = (found.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), None)

    condition = wait_for("Ready reported", ready)
    assert condition["status"] == "False"
    assert condition["reason"] == "SecretNotReady"
    assert "at least one recipient" in condition["message"]
