"""End to end: one DeployJob of a pull request delivers to the pull-request and release types at
once — a GitHub pull-request comment, a GitHub check run, a GitLab merge-request note, a comment
on a pull request of a real Gitea (built from its Go module), a Sentry deploy and a New Relic
marker — and a SIGKILL of the operator between the run's start and its outcome leaves exactly
one comment, note and check run (each edited once, with the outcome), one deploy and one
marker."""

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
    secret,
    sent_everywhere,
    wait_dj,
)
from tests.support.gitea import GiteaServer, binary
from tests.support.operator import OperatorProcess
from tests.support.peers.github_pulls import GithubPullsPeer
from tests.support.peers.gitlab_notes import GitlabNotesPeer
from tests.support.peers.newrelic import ENTITY, NewrelicPeer
from tests.support.peers.sentry import SentryPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = (
    "githubpullrequestcomment",
    "githubcheckrun",
    "gitlabmergerequestcomment",
    "giteapullrequestcomment",
    "sentry",
    "newrelic",
)
SHA = "5555555555555555555555555555555555555555"


@dataclass
class Peers:
    pr: int  # the pull request's number on every forge (Gitea's first index)
    gitea: GiteaServer
    github: GithubPullsPeer
    gitlab: GitlabNotesPeer
    sentry: SentryPeer
    newrelic: NewrelicPeer


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    gitea = GiteaServer(binary(), tmp_path_factory.mktemp("gitea") / "work").start()
    try:
        gitea.repository("web")
        pr = gitea.pull_request("web")
        with (
            GithubPullsPeer(repositories={"acme/web": {SHA}}, pulls=(pr,)) as github,
            GitlabNotesPeer(projects={"acme/web": {SHA}}, merge_requests=(pr,)) as gitlab,
            SentryPeer() as sentry,
            NewrelicPeer() as newrelic,
        ):
            yield Peers(pr, gitea, github, gitlab, sentry, newrelic)
    finally:
        gitea.stop()


def note(type_: str, options: dict[str, Any], recipients: list[str] | None = None) -> Any:
    spec: dict[str, Any] = {"type": type_, "secretRef": {"name": type_}, type_: options}
    if recipients:
        spec["recipients"] = recipients
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": spec,
    }


def setup_notifications(cluster: ClusterAccess, ns: str, peers: Peers) -> None:
    github = {"token": peers.github.token, "apiUrl": peers.github.api_url}
    cluster.apply(
        [
            secret("githubpullrequestcomment", github),
            secret("githubcheckrun", github),
            secret(
                "gitlabmergerequestcomment",
                {"token": peers.gitlab.token, "apiUrl": peers.gitlab.url},
            ),
            secret(
                "giteapullrequestcomment",
                {"token": peers.gitea.token("write:issue"), "apiUrl": peers.gitea.base_url},
            ),
            secret("sentry", {"token": peers.sentry.token, "apiUrl": peers.sentry.url}),
            secret("newrelic", {"apiKey": peers.newrelic.api_key, "apiUrl": peers.newrelic.url}),
            note("githubpullrequestcomment", {}),
            note("githubcheckrun", {}),
            note("gitlabmergerequestcomment", {"project": "acme/web"}),
            note("giteapullrequestcomment", {}),
            note("sentry", {"organization": "acme", "projects": "web"}),
            note("newrelic", {}, [ENTITY]),
        ],
        ns,
    )


def test_a_sigkill_between_start_and_outcome_makes_no_second_comment_check_or_deploy(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    source = {
        "repository": "https://github.com/acme/web",
        "revision": SHA,
        "url": f"https://github.com/acme/web/pull/{peers.pr}",
    }
    job = notifying(TYPES, "pr", [deployment("pr")], source=source, stabilitySeconds=6)
    cluster.apply(job, ns)
    wait_dj(
        cluster,
        ns,
        "pr",
        "start delivered everywhere, verifying",
        lambda s: s.get("phase") == "Verifying" and delivered(s, 1, "start") == set(TYPES),
    )
    pr = peers.pr
    started = (
        peers.github.comments(pr),
        peers.gitlab.notes(pr),
        peers.github.check_runs(SHA),
        peers.gitea.comments("web", pr),
    )
    operator.kill()
    operator.start()
    wait_dj(cluster, ns, "pr", "success everywhere", sent_everywhere(TYPES, 1, "success"), 120)

    title = f"{ns}/pr succeeded"
    [comment] = [c for c in peers.github.comments(pr) if f"{ns}/pr#1" in c["body"]]
    [mr_note] = [n for n in peers.gitlab.notes(pr) if f"{ns}/pr#1" in n["body"]]
    [check] = [c for c in peers.github.check_runs(SHA) if c["name"] == f"deploybell/{ns}/pr"]
    [gitea] = [c for c in peers.gitea.comments("web", pr) if f"{ns}/pr#1" in c["body"]]
    assert [len(records) for records in started] == [1, 1, 1, 1], started
    assert started[3][0]["id"] == gitea["id"]
    assert peers.gitea.edits("web", pr, gitea["id"]) == 1
    assert title in gitea["body"]
    assert comment["edits"] == 1
    assert title in comment["body"]
    assert mr_note["edits"] == 1
    assert title in mr_note["body"]
    assert check["history"] == ["in_progress", "success"]
    # The environment is the namespace (the DeployJob names none); Sentry's 64-character name
    # may cut the long test namespace, never the outcome and run.
    [deploy] = [d for d in peers.sentry.deploys() if d["environment"] == ns]
    assert deploy["name"].endswith(" (run 1)"), deploy
    assert " succeeded" in deploy["name"], deploy
    assert peers.sentry.releases()[SHA]["ref"] == SHA
    [marker] = [m for m in peers.newrelic.markers() if f" {ns}/pr " in m["description"]]
    assert marker["commit"] == SHA
