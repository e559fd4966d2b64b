"""End to end: the operator sets commit statuses on Gitea, Bitbucket Cloud, Bitbucket Data
Center and Azure DevOps peers for DeployJob runs — one status per DeployJob on its commit, in
progress at start and then the outcome (success, failure), the start's replaced by it."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploybell.notify.providers._commitstatus import short_key
from tests.support.cluster import ClusterAccess
from tests.support.deploybell import deployment, notifying, secret, sent_everywhere, wait_dj
from tests.support.peers._statuses import Status, StatusPeer
from tests.support.peers.azuredevops import AzureDevopsPeer
from tests.support.peers.bitbucket import MAX_KEY, BitbucketPeer
from tests.support.peers.bitbucketserver import BitbucketServerPeer
from tests.support.peers.gitea import GiteaPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("gitea", "bitbucket", "bitbucketserver", "azuredevops")
all_sent = functools.partial(sent_everywhere, TYPES, 1)
REPOSITORY = "https://git.example.com/acme/web.git"
SHAS = {"web": "5" * 40, "api": "6" * 40}
# What each forge calls the start's state and each outcome's.
STATES = {
    "gitea": ("pending", {"success": "success", "failure": "failure"}),
    "bitbucket": ("INPROGRESS", {"success": "SUCCESSFUL", "failure": "FAILED"}),
    "bitbucketserver": ("INPROGRESS", {"success": "SUCCESSFUL", "failure": "FAILED"}),
    "azuredevops": ("pending", {"success": "succeeded", "failure": "failed"}),
}


@dataclass
class Peers:
    gitea: GiteaPeer
    bitbucket: BitbucketPeer
    bitbucketserver: BitbucketServerPeer
    azuredevops: AzureDevopsPeer

    def of(self, type_: str) -> StatusPeer:
        peer: StatusPeer = getattr(self, type_)
        return peer


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    commits = set(SHAS.values())
    with (
        GiteaPeer(repositories={"acme/web": commits}) as gitea,
        BitbucketPeer(repositories={"acme/web": commits}) as bitbucket,
        BitbucketServerPeer(repositories={"ACME/web": commits}) as server,
        AzureDevopsPeer(repositories={"acme/Platform/web": commits}) as azure,
    ):
        yield Peers(gitea, bitbucket, server, azure)


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
            secret("gitea", {"token": peers.gitea.token, "apiUrl": peers.gitea.base_url}),
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


def of_job(peer: StatusPeer, ns: str, job: str) -> list[Status]:
    """The statuses set for one DeployJob, oldest first."""
    name = f"deploybell/{ns}/{job}"
    wanted = {name, short_key(name, MAX_KEY)}  # Bitbucket Cloud's keys are 40 characters
    return [s for s in peer.statuses() if s.sha == SHAS[job] and s.name in wanted]


def test_start_success_and_failure_reach_every_forge(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    source = {"repository": REPOSITORY}
    cluster.apply(
        [
            notifying(
                TYPES, "web", [deployment("web")], source={**source, "revision": SHAS["web"]}
            ),
            notifying(TYPES, "api", [crashing], source={**source, "revision": SHAS["api"]}),
        ],
        ns,
    )
    for job, outcome in (("web", "success"), ("api", "failure")):
        wait_dj(cluster, ns, job, f"{outcome} set everywhere", all_sent(outcome), timeout=120)
        for type_ in TYPES:
            peer = peers.of(type_)
            start, outcomes = STATES[type_]
            seen = of_job(peer, ns, job)
            assert [s.state for s in seen] == [start, outcomes[outcome]], (type_, seen)
            assert f"{ns}/{job} " in seen[-1].description, (type_, seen)
            # What the forge shows for the commit: the outcome alone, in place of the start.
            shown = [s for s in peer.shown() if s.sha == SHAS[job] and s.name == seen[0].name]
            assert [s.state for s in shown] == [outcomes[outcome]], (type_, shown)
