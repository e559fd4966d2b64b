"""End to end: the operator delivers a DeployJob's start and outcome to Rocket.Chat, Webex, Zulip
(local API peers) and Matrix (a real Synapse) at once: one succeeding and one failing run, each
start message edited in place into the outcome and the outcome replied in its thread, the
succeeding one across an operator restart between start and outcome (the start's references
come back from the ledger)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import (
    delivered,
    deployment,
    notifying,
    secret,
    sent_everywhere,
    start_refs,
    wait_dj,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.matrix import MatrixPeer
from tests.support.peers.mattermost import readable
from tests.support.peers.rocketchat import RocketchatPeer
from tests.support.peers.webex import WebexPeer
from tests.support.peers.zulip import ZulipPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("rocketchat", "webex", "zulip", "matrix")
job = functools.partial(notifying, TYPES)


@dataclass
class Peers:
    rocketchat: RocketchatPeer
    webex: WebexPeer
    zulip: ZulipPeer
    matrix: MatrixPeer

    def threads(self, ref: str) -> dict[str, tuple[str, str]]:
        """Per type, the (start message, thread reply) a reader sees about job `ref`, as text."""
        rocket = [m for m in self.rocketchat.shown() if ref in m.msg]
        webex = [m for m in self.webex.shown() if ref in readable(m.markdown)]
        zulip = [m for m in self.zulip.shown() if m.topic == ref]
        matrix = [m for m in self.matrix.shown() if ref in m["body"]]
        return {
            "rocketchat": _pair([(readable(m.msg), bool(m.tmid)) for m in rocket]),
            "webex": _pair([(readable(m.markdown), bool(m.parent_id)) for m in webex]),
            "zulip": _pair([(readable(m.content), i > 0) for i, m in enumerate(zulip)]),
            "matrix": _pair([(m["body"], "m.relates_to" in m) for m in matrix]),
        }


def _pair(messages: list[tuple[str, bool]]) -> tuple[str, str]:
    """The one start message and the one reply; fails showing what is there otherwise."""
    starts = [text for text, reply in messages if not reply]
    replies = [text for text, reply in messages if reply]
    assert (len(starts), len(replies)) == (1, 1), messages
    return starts[0], replies[0]


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with (
        RocketchatPeer() as rocketchat,
        WebexPeer() as webex,
        ZulipPeer() as zulip,
        MatrixPeer(unlimited_bot=False) as matrix,
    ):
        yield Peers(rocketchat, webex, zulip, matrix)


def notification(type_: str, recipient: str) -> dict[str, Any]:
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": {"type": type_, "recipients": [recipient], "secretRef": {"name": type_}},
    }


def test_start_and_outcome_reach_all_four_edited_in_place_and_threaded(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    ns = namespace
    recipients = {
        "rocketchat": "#deploys",
        "webex": peers.webex.room,
        "zulip": "#deploys",
        "matrix": peers.matrix.alias,
    }
    contracts: dict[str, Any] = {t: getattr(peers, t) for t in TYPES}
    cluster.apply(
        [secret(t, contracts[t].secret()) for t in TYPES]
        + [notification(t, recipients[t]) for t in TYPES],
        ns,
    )
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply([job("web", [deployment("web")], stabilitySeconds=6), job("api", [crashing])], ns)
    verifying = wait_dj(
        cluster,
        ns,
        "web",
        "start sent everywhere, verifying",
        lambda s: s.get("phase") == "Verifying" and delivered(s, 1, "start") == set(TYPES),
    )["status"]
    kept = {t: start_refs(verifying, 1, t) for t in TYPES}
    operator.kill()
    operator.start()
    wait_dj(cluster, ns, "web", "success sent", sent_everywhere(TYPES, 1, "success"), 120)
    failed = wait_dj(cluster, ns, "api", "failure sent", sent_everywhere(TYPES, 1, "failure"), 120)
    pod = failed["status"]["diagnosis"]["pods"][0]["pod"]

    for name, verb in (("web", "succeeded"), ("api", "failed")):
        outcome = f"{ns}/{name} {verb} on local-test (run 1)"
        for type_, (start, reply) in peers.threads(f"{ns}/{name}").items():
            assert outcome in start, (type_, "the start message, edited", start)
            assert "started" not in start, (type_, start)
            assert outcome in reply, (type_, "the reply in its thread", reply)
            if name == "web":  # edited after the restart, from the references in the ledger
                assert kept[type_] in _edited(peers, type_, f"{ns}/web"), (type_, kept[type_])
            if name == "api":
                assert pod in start, (type_, start)
                assert "CrashLoopBackOff" in reply, (type_, reply)


def _edited(peers: Peers, type_: str, ref: str) -> list[dict[str, str]]:
    """The references of the edited start messages about `ref`, in the shape the ledger keeps."""
    if type_ == "rocketchat":
        found = [m for m in peers.rocketchat.shown() if ref in m.msg and m.edited]
        return [{"room": m.rid, "message": m.id} for m in found]
    if type_ == "webex":
        shown = peers.webex.shown()
        return [
            {"room": m.room_id, "message": m.id} for m in shown if m.updated and ref in m.markdown
        ]
    if type_ == "zulip":
        return [{"message": str(m.id)} for m in peers.zulip.shown() if m.edited and m.topic == ref]
    shown = peers.matrix.shown()
    room = peers.matrix.room_id
    return [
        {"room": room, "event": m["event_id"]}
        for m in shown
        if m.get("edited") and ref in m["body"]
    ]
