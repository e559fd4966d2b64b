"""End to end: the operator sets commit statuses on a real Gitea (built from its Go module) and
on Bitbucket Cloud, Bitbucket Data Center and Azure DevOps peers for DeployJob runs — one status
per DeployJob on its commit, in progress at start and then the outcome (success, failure,
cancel), the start's replaced by it in what the forge shows, its name kept in the ledger while
the run goes on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploybell.notify.providers._commitstatus import short_key
from tests.support.cluster import ClusterAccess
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
from tests.support.gitea import GiteaServer, binary
from tests.support.peers._statuses import StatusPeer
from tests.support.peers.azuredevops import AzureDevopsPeer
from tests.support.peers.bitbucket import MAX_KEY, BitbucketPeer
from tests.support.peers.bitbucketserver import BitbucketServerPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("gitea", "bitbucket", "bitbucketserver", "azuredevops")
all_sent = functools.partial(sent_everywhere, TYPES, 1)
REPOSITORY = "https://git.example.com/acme/web.git"
JOBS = (("web", "success"), ("api", "failure"), ("slow", "cancel"))
# What each forge calls the start's state and each outcome's.
STATES = {
    "gitea": ("pending", {"success": "success", "failure": "failure", "cancel": "error"}),
    "bitbucket": (
        "INPROGRESS",
        {"success": "SUCCESSFUL", "failure": "FAILED", "cancel": "STOPPED"},
    ),
    "bitbucketserver": (
        "INPROGRESS",
        {"success": "SUCCESSFUL", "failure": "FAILED", "cancel": "CANCELLED"},
    ),
    "azuredevops": ("pending", {"success": "succeeded", "failure": "failed", "cancel": "error"}),
}


@dataclass
class Peers:
    gitea: GiteaServer
    commit: str  # the one commit of the Gitea repository, deployed by both jobs
    bitbucket: BitbucketPeer
    bitbucketserver: BitbucketServerPeer
    azuredevops: AzureDevopsPeer

    def states(self, type_: str, ns: str, job: str) -> tuple[list[str], list[str]]:
        """The states set for a DeployJob, oldest first, and what the forge shows for it."""
        name = f"deploybell/{ns}/{job}"
        if type_ == "gitea":
            ours = [s for s in self.gitea.statuses("web", self.commit) if s["context"] == name]
            shown = self.gitea.combined("web", self.commit)["statuses"]
            return [s["status"] for s in ours], [s["status"] for s in shown if s["context"] == name]
        peer: StatusPeer = getattr(self, type_)
        names = {name, short_key(name, MAX_KEY)}  # Bitbucket Cloud's keys are 40 characters
        return (
            [s.state for s in peer.statuses() if s.name in names],
            [s.state for s in peer.shown() if s.name in names],
        )


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    gitea = GiteaServer(binary(), tmp_path_factory.mktemp("gitea") / "work").start()
    commit = gitea.repository("web")
    try:
        with (
            BitbucketPeer(repositories={"acme/web": {commit}}) as bitbucket,
            BitbucketServerPeer(repositories={"ACME/web": {commit}}) as server,
            AzureDevopsPeer(repositories={"acme/Platform/web": {commit}}) as azure,
        ):
            yield Peers(gitea, commit, bitbucket, server, azure)
    finally:
        gitea.stop()


def notification(type_: str, options: dict[str, Any]) -> dict[str, Any]:
    spec = {"type": type_, "secretRef": {"name": type_}, type_: options}
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": spec,
    }


def setup(cluster: ClusterAccess, ns: str, peers: Peers) -> None:
    server = peers.bitbucketserver
    cluster.apply(
        [
            secret(
                "gitea",
                {"token": peers.gitea.token("write:repository"), "apiUrl": peers.gitea.base_url},
            ),
            secret("bitbucket", {"token": peers.bitbucket.token, "apiUrl": peers.bitbucket.url}),
            secret(
                "bitbucketserver",
                {"username": server.username, "password": server.password, "apiUrl": server.url},
            ),
            secret(
                "azuredevops", {"token": peers.azuredevops.token, "apiUrl": peers.azuredevops.url}
            ),
            notification("gitea", {}),
            notification("bitbucket", {"repository": "acme/web"}),
            notification("bitbucketserver", {"repository": "ACME/web"}),
            notification("azuredevops", {"repository": "acme/Platform/web"}),
        ],
        ns,
    )


def test_start_and_every_outcome_reach_every_forge(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    stuck = deployment("slow", node_selector=UNSCHEDULABLE)
    source = {"repository": REPOSITORY, "revision": peers.commit}
    cluster.apply(
        [
            notifying(TYPES, "web", [deployment("web")], source=source),
            notifying(TYPES, "api", [crashing], source=source),
            notifying(TYPES, "slow", [stuck], source=source),
        ],
        ns,
    )
    running = wait_dj(
        cluster, ns, "slow", "start set", lambda s: delivered(s, 1, "start") == set(TYPES)
    )
    for type_ in TYPES:
        # What an outcome sent by a restarted operator reads: the status's name, in the ledger.
        name = f"deploybell/{ns}/slow"
        kept = start_refs(running["status"], 1, type_)
        assert kept["status"] in {name, short_key(name, MAX_KEY)}, (type_, kept)
    cluster.kubectl("annotate", "dj/slow", "-n", ns, "deploybell.io/cancel=now")
    for job, outcome in JOBS:
        wait_dj(cluster, ns, job, f"{outcome} set", all_sent(outcome), timeout=120)
        for type_ in TYPES:
            start, outcomes = STATES[type_]
            states, shown = peers.states(type_, ns, job)
            assert states == [start, outcomes[outcome]], (type_, job, states)
            # What the forge shows for the commit: the outcome alone, in place of the start.
            assert shown == [outcomes[outcome]], (type_, job, shown)
