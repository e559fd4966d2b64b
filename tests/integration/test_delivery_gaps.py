"""End to end: one DeployJob run through the real operator tells Lark, Zoom Team Chat, Pushover
and GitHub repository_dispatch peers about its start and its success, each as its vendor takes
it (a signed Lark card, a Zoom full-format message with the verification token, a Pushover
message to a device, a dispatch to the repository of the DeployJob's spec.source)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import (
    delivered,
    deployment,
    notifying,
    typed_notifications,
    wait_dj,
)
from tests.support.peers.contract import texts
from tests.support.peers.githubdispatch import GithubDispatchPeer
from tests.support.peers.lark import SECRET, LarkPeer
from tests.support.peers.pushover import USER, PushoverPeer
from tests.support.peers.zoom import ZoomPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("lark", "zoom", "pushover", "githubdispatch")
SHA = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"


@dataclass
class Peers:
    lark: LarkPeer
    zoom: ZoomPeer
    pushover: PushoverPeer
    githubdispatch: GithubDispatchPeer

    def shown(self, type_: str) -> list[str]:
        """What each destination shows, oldest first."""
        if type_ == "lark":
            return [texts(card) for card in self.lark.messages()]
        if type_ == "zoom":
            return [texts(message) for message in self.zoom.messages()]
        if type_ == "pushover":
            return [f"{m['title']} {m['message']}" for m in self.pushover.delivered()]
        dispatches = self.githubdispatch.dispatches("acme/web")
        return [texts(d["client_payload"]["title"]) for d in dispatches]


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with (
        LarkPeer() as lark,
        ZoomPeer() as zoom,
        PushoverPeer() as pushover,
        GithubDispatchPeer() as githubdispatch,
    ):
        yield Peers(lark, zoom, pushover, githubdispatch)


def notifications(peers: Peers) -> list[dict[str, Any]]:
    keys = {
        "lark": {"webhookUrl": peers.lark.url, "signingSecret": SECRET},
        "zoom": {"webhookUrl": peers.zoom.url, "verificationToken": peers.zoom.token},
        "pushover": {"token": peers.pushover.token, "apiUrl": peers.pushover.base_url},
        "githubdispatch": {
            "token": peers.githubdispatch.token,
            "apiUrl": peers.githubdispatch.api_url,
        },
    }
    extra: dict[str, dict[str, Any]] = {
        "pushover": {"recipients": [f"{USER}:phone"]},
        "githubdispatch": {"githubdispatch": {"eventType": "deployed"}},
    }
    return typed_notifications({type_: keys[type_] for type_ in TYPES}, extra)


def test_start_and_success_reach_all_four(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    cluster.apply(notifications(peers), ns)
    source = {"repository": "https://github.com/acme/web", "revision": SHA}
    cluster.apply(notifying(TYPES, "web", [deployment("web")], source=source), ns)

    status = wait_dj(
        cluster,
        ns,
        "web",
        "success sent to all four",
        lambda s: set(TYPES) <= delivered(s, 1, "success"),
        120,
    )
    assert status["status"]["phase"] == "Succeeded"
    started = f"{ns}/web started on local-test (run 1)"
    succeeded = f"{ns}/web succeeded on local-test (run 1)"
    for type_ in TYPES:
        shown = [m for m in peers.shown(type_) if f" {ns}/web " in m]
        assert len(shown) == 2, (type_, shown)
        assert started in shown[0], (type_, shown)
        assert succeeded in shown[1], (type_, shown)
    assert {r.authorization for r in peers.zoom.received} == {peers.zoom.token}
    assert all(r.code == 0 for r in peers.lark.received)
    assert [m["device"] for m in peers.pushover.delivered()] == ["phone", "phone"]
    events = [d["client_payload"]["event"] for d in peers.githubdispatch.dispatches("acme/web")]
    assert events == ["start", "success"]
