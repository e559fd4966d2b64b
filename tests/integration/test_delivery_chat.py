"""End to end: the operator tells Teams, Discord and Google Chat peers about start, success,
failure and cancel of DeployJob runs; Discord's in-place edit and Google Chat's thread survive an
operator restart between start and outcome."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import (
    UNSCHEDULABLE,
    deployment,
    ledger,
    notifying,
    secret,
    start_refs,
    wait_dj,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.contract import texts
from tests.support.peers.discord import DiscordPeer, readable
from tests.support.peers.googlechat import GooglechatPeer
from tests.support.peers.teams import TeamsPeer

pytestmark = pytest.mark.usefixtures("operator")
CHAT = ("teams", "discord", "googlechat")


@dataclass
class Peers:
    teams: TeamsPeer
    discord: DiscordPeer
    googlechat: GooglechatPeer

    def url(self, type_: str) -> str:
        peer: TeamsPeer | DiscordPeer | GooglechatPeer = getattr(self, type_)
        return peer.url

    def shown(self, type_: str, ref: str) -> list[str]:
        """What the channel shows about the job `ref` (namespace/job) now, oldest first."""
        if type_ == "teams":
            messages = [texts(card) for card in self.teams.cards()]
        elif type_ == "discord":
            messages = [readable(texts(m["embeds"])) for m in self.discord.messages()]
        else:
            messages = [html.unescape(texts(m["cardsV2"])) for m in self.googlechat.messages()]
        return [m for m in messages if f" {ref} " in m]

    def threads(self, ref: str) -> set[str]:
        """The Google Chat threads holding messages about `ref`."""
        return {m["thread"]["name"] for m in self.googlechat.messages() if f" {ref} " in m["text"]}


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with TeamsPeer() as teams, DiscordPeer() as discord, GooglechatPeer() as googlechat:
        yield Peers(teams, discord, googlechat)


def notify(cluster: ClusterAccess, ns: str, peers: Peers, type_: str) -> None:
    notification = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": {"type": type_, "secretRef": {"name": type_}},
    }
    cluster.apply([secret(type_, {"webhookUrl": peers.url(type_)}), notification], ns)


def job(name: str, type_: str, manifests: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return notifying((type_,), name, manifests, **spec)


def sent(status: dict[str, Any], event: str) -> bool:
    return any(e[1] == event and e[3] == "Sent" for e in ledger(status, 1))


@pytest.mark.parametrize("type_", CHAT)
def test_start_and_each_outcome_reach_the_channel(
    cluster: ClusterAccess, namespace: str, peers: Peers, type_: str
) -> None:
    ns = namespace
    notify(cluster, ns, peers, type_)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply([
        job("web", type_, [deployment("web", 2)]),
        job("api", type_, [crashing]),
        job("slow", type_, [deployment("slow", node_selector=UNSCHEDULABLE)]),
    ], ns)  # fmt: skip
    wait_dj(cluster, ns, "slow", "start sent", lambda s: sent(s, "start"))
    cluster.kubectl("annotate", "dj/slow", "-n", ns, "deploybell.io/cancel=now")
    outcomes = {"web": "success", "api": "failure", "slow": "cancel"}
    statuses = {
        name: wait_dj(cluster, ns, name, f"{event} sent", lambda s, e=event: sent(s, e), 120)
        for name, event in outcomes.items()
    }
    pod = statuses["api"]["status"]["diagnosis"]["pods"][0]["pod"]
    verbs = {"web": "succeeded", "api": "failed", "slow": "was canceled"}
    for name, verb in verbs.items():
        shown = peers.shown(type_, f"{ns}/{name}")
        outcome = f"{ns}/{name} {verb} on local-test (run 1)"
        started = f"{ns}/{name} started on local-test (run 1)"
        if type_ == "discord":  # one message: the start, edited into the outcome
            assert len(shown) == 1, shown
            assert outcome in shown[0], shown
        else:  # a start message and an outcome message
            assert len(shown) == 2, shown
            assert started in shown[0], shown
            assert outcome in shown[1], shown
    [failure] = [m for m in peers.shown(type_, f"{ns}/api") if "failed" in m]
    assert pod in failure
    assert "CrashLoopBackOff" in failure
    if type_ == "googlechat":  # each run's messages in a thread of their own
        threads = [peers.threads(f"{ns}/{name}") for name in verbs]
        assert all(len(t) == 1 for t in threads), threads
        assert len(set().union(*threads)) == 3


@pytest.mark.parametrize("type_", ["discord", "googlechat"])
def test_the_edit_and_the_thread_survive_a_restart(
    cluster: ClusterAccess,
    namespace: str,
    peers: Peers,
    operator: OperatorProcess,
    type_: str,
) -> None:
    ns = namespace
    notify(cluster, ns, peers, type_)
    cluster.apply(job("web", type_, [deployment("web")], stabilitySeconds=6), ns)
    verifying = wait_dj(
        cluster,
        ns,
        "web",
        "start sent, verifying",
        lambda s: s.get("phase") == "Verifying" and sent(s, "start"),
    )
    refs = start_refs(verifying["status"], 1, type_)
    operator.kill()
    operator.start()
    status = wait_dj(cluster, ns, "web", "success sent", lambda s: sent(s, "success"), 120)
    assert not any(e.get("refs") for e in status["status"]["notifications"]), (
        "once the outcome is delivered, the start's references are no longer kept"
    )
    ref = f"{ns}/web"
    shown = peers.shown(type_, ref)
    if type_ == "discord":
        [message] = shown  # the start message was edited after the restart, not posted again
        assert f"{ref} succeeded on local-test (run 1)" in message
        patches = [r for r in peers.discord.received if r.method == "PATCH" and r.status == 200]
        assert any(r.path.endswith(refs["messageId"]) for r in patches)
    else:
        assert len(shown) == 2, shown
        assert peers.threads(ref) == {refs["thread"]}
