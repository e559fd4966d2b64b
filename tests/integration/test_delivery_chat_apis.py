"""End to end: the operator delivers a DeployJob's start and outcome to Rocket.Chat, Webex, Zulip
(local API peers) and Matrix (a real Synapse) at once: one succeeding and one failing run, each
start message edited in place into the outcome and the outcome replied in its thread."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import deployment, notifying, secret, sent_everywhere, wait_dj
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
        MatrixPeer() as matrix,
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
    cluster: ClusterAccess, namespace: str, peers: Peers
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
    cluster.apply([job("web", [deployment("web")]), job("api", [crashing])], ns)
    wait_dj(cluster, ns, "web", "success sent", sent_everywhere(TYPES, 1, "success"), 120)
    failed = wait_dj(cluster, ns, "api", "failure sent", sent_everywhere(TYPES, 1, "failure"), 120)
    pod = failed["status"]["diagnosis"]["pods"][0]["pod"]

    for name, verb in (("web", "succeeded"), ("api", "failed")):
        outcome = f"{ns}/{name} {verb} on local-test (run 1)"
        for type_, (start, reply) in peers.threads(f"{ns}/{name}").items():
            assert outcome in start, (type_, "the start message, edited", start)
            assert "started" not in start, (type_, start)
            assert outcome in reply, (type_, "the reply in its thread", reply)
            if name == "api":
                assert pod in start, (type_, start)
                assert "CrashLoopBackOff" in reply, (type_, reply)
