"""End to end: the operator records DeployJob runs on local GitHub, GitLab, Grafana and Datadog
peers — start, success, failure and cancel with the right state transitions — and a SIGKILL
between a run's start and its outcome leaves exactly one deployment / annotation / event."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import (
    UNSCHEDULABLE,
    delivered,
    deployjob,
    deployment,
    ledger,
    notifying,
    secret,
    sent_everywhere,
    wait_dj,
    webhook_events,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.datadog import DatadogPeer
from tests.support.peers.github import GithubPeer
from tests.support.peers.gitlab import GitlabPeer
from tests.support.peers.grafana import GrafanaPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("github", "gitlab", "grafana", "datadog")
all_sent = functools.partial(sent_everywhere, TYPES, 1)
REPOSITORY = "https://github.com/acme/web"
SHAS = {  # one commit per job, so that each job's records are told apart
    "web": "1111111111111111111111111111111111111111",
    "api": "2222222222222222222222222222222222222222",
    "slow": "3333333333333333333333333333333333333333",
    "again": "4444444444444444444444444444444444444444",
    "restarted": "5555555555555555555555555555555555555555",
}


@dataclass
class Peers:
    github: GithubPeer
    gitlab: GitlabPeer
    grafana: GrafanaPeer
    datadog: DatadogPeer


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    commits = set(SHAS.values())
    with (
        GithubPeer(repositories={"acme/web": commits}) as github,
        GitlabPeer(projects={"acme/web": commits}) as gitlab,
        GrafanaPeer() as grafana,
        DatadogPeer() as datadog,
    ):
        yield Peers(github, gitlab, grafana, datadog)


def setup_notifications(cluster: ClusterAccess, ns: str, peers: Peers) -> None:
    def note(type_: str, options: dict[str, Any]) -> dict[str, Any]:
        spec = {"type": type_, "secretRef": {"name": type_}, type_: options}
        return {
            "apiVersion": "deploybell.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": type_},
            "spec": spec,
        }

    cluster.apply(
        [
            secret("github", {"token": peers.github.token, "apiUrl": peers.github.api_url}),
            secret("gitlab", {"token": peers.gitlab.token, "apiUrl": peers.gitlab.url}),
            secret("grafana", {"token": peers.grafana.token, "url": peers.grafana.url}),
            secret(
                "datadog",
                {
                    "apiKey": peers.datadog.api_key,
                    "appKey": peers.datadog.app_key,
                    "apiUrl": peers.datadog.url,
                },
            ),
            note("github", {"commitStatus": True}),
            note("gitlab", {"project": "acme/web", "commitStatus": True}),
            note("grafana", {}),
            note("datadog", {}),
        ],
        ns,
    )


def recorded(name: str, manifests: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A DeployJob of commit SHAS[name] whose start and outcome go to every record type."""
    source = {"repository": REPOSITORY, "revision": SHAS[name]}
    return notifying(TYPES, name, manifests, source=source, **spec)


def github_of(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    return [
        d
        for d in peers.github.deployments()
        if d["payload"]["deploybell"]["namespace"] == ns and d["sha"] == SHAS[job]
    ]


def gitlab_of(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    return [
        d
        for d in peers.gitlab.deployments()
        if d["environment"]["name"] == ns and d["sha"] == SHAS[job]
    ]


def grafana_of(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    return [a for a in peers.grafana.annotations() if f"{ns}/{job}" in a["tags"]]


def datadog_of(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    return [e for e in peers.datadog.events() if f"deploybell.job:{ns}/{job}" in e["custom_tags"]]


def assert_recorded(peers: Peers, ns: str, job: str, outcome: str) -> None:
    """Exactly one record per provider, with the start's state followed by the outcome's."""
    github = {"success": "success", "failure": "failure", "cancel": "inactive"}[outcome]
    gitlab = {"success": "success", "failure": "failed", "cancel": "canceled"}[outcome]
    word = {"success": "succeeded", "failure": "failed", "cancel": "canceled"}[outcome]
    [deployment] = github_of(peers, ns, job)
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", github], deployment
    assert f"{ns}/{job} " in deployment["statuses"][-1]["description"]
    commit = [
        s["state"]
        for s in peers.github.commit_statuses()
        if s["context"] == f"deploybell/{ns}/{job}"
    ]
    assert commit == ["pending", {"cancel": "error"}.get(outcome, github)]
    [lab] = gitlab_of(peers, ns, job)
    assert lab["history"] == ["running", gitlab], lab
    [annotation] = grafana_of(peers, ns, job)
    assert annotation["tags"] == ["deploybell", f"{ns}/{job}", ns, word], annotation
    assert annotation["timeEnd"] >= annotation["time"]
    assert annotation["patches"] == 1
    [event] = datadog_of(peers, ns, job)
    assert f"deploybell.outcome:{word}" in event["custom_tags"]
    assert event["change_failure"] is (True if outcome == "failure" else None)
    assert event["git"]["commit_sha"] == SHAS[job]


def test_start_and_every_outcome_are_recorded(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(
        [
            recorded("web", [deployment("web")]),
            recorded("api", [crashing]),
            recorded("slow", [deployment("slow", node_selector=UNSCHEDULABLE)]),
        ],
        ns,
    )
    wait_dj(cluster, ns, "slow", "start recorded", lambda s: delivered(s, 1, "start") == set(TYPES))
    cluster.kubectl("annotate", "dj/slow", "-n", ns, "deploybell.io/cancel=now")
    for job, outcome in (("web", "success"), ("api", "failure"), ("slow", "cancel")):
        wait_dj(cluster, ns, job, f"{outcome} recorded", all_sent(outcome), timeout=120)
        assert_recorded(peers, ns, job, outcome)


def test_a_sigkill_between_start_and_outcome_makes_no_second_record(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    cluster.apply(recorded("again", [deployment("again")], stabilitySeconds=6), ns)
    wait_dj(
        cluster,
        ns,
        "again",
        "start recorded, verifying",
        lambda s: s.get("phase") == "Verifying" and delivered(s, 1, "start") == set(TYPES),
    )
    operator.kill()
    operator.start()
    wait_dj(cluster, ns, "again", "success recorded", all_sent("success"), timeout=120)
    assert_recorded(peers, ns, "again", "success")


def test_a_deployjob_without_source_fails_the_record_naming_the_field(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    job = deployjob(
        "plain",
        [deployment("plain")],
        onStart=[{"notify": "github"}],
        always=[{"notify": "github"}],
    )
    cluster.apply(job, ns)
    status = wait_dj(
        cluster,
        ns,
        "plain",
        "both records failed, the run succeeded",
        lambda s: (
            s.get("phase") == "Succeeded" and [e[3] for e in ledger(s, 1)] == ["Failed", "Failed"]
        ),
    )["status"]
    condition = {c["type"]: c for c in status["conditions"]}["NotificationsDelivered"]
    assert condition["status"] == "False"
    assert "has no spec.source.revision" in condition["message"]
    assert peers.github.token not in str(status)


def pending_outcome(run: int) -> Any:
    """A status check: the run succeeded, its success was tried and is still Pending for both."""

    def check(status: dict[str, Any]) -> bool:
        rows = [
            e
            for e in status.get("notifications") or []
            if e["run"] == run and e["event"] == "success"
        ]
        tried = {e["notification"] for e in rows if e["state"] == "Pending" and e.get("attempts")}
        return status.get("phase") == "Succeeded" and tried == {"github", "hook"}

    return check


def test_an_outcome_pending_at_a_restart_says_the_runs_source(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    """The outcome of a run, refused until the operator stops (SIGKILL for run 1, SIGTERM for
    run 2), is sent by the next process as it would have been without the restart: the
    CloudEvent carries the environment, commit and repository, and GitHub's deployment gets its
    outcome status (it stayed in_progress when the source was lost)."""
    ns, sha = namespace, SHAS["restarted"]
    source = {"repository": REPOSITORY, "revision": sha, "environment": "production"}
    with WebhookPeer() as hook:
        cluster.apply(
            [
                secret("github", {"token": peers.github.token, "apiUrl": peers.github.api_url}),
                secret("hook", {"url": hook.url}),
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": "github"},
                    "spec": {"type": "github", "secretRef": {"name": "github"}},
                },
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": "hook"},
                    "spec": {"type": "webhook", "secretRef": {"name": "hook"}},
                },
            ],
            ns,
        )
        job = notifying(
            ("github", "hook"),
            "restarted",
            [deployment("restarted")],
            source=source,
            stabilitySeconds=4,
        )
        cluster.apply(job, ns)
        try:
            restart_twice(cluster, ns, hook, peers, operator)
        finally:
            if not operator.running:  # the session's operator stays up for the next tests
                operator.start()
        sent = [e for e in webhook_events(hook, ns, "restarted") if e["type"].endswith("success")]
    assert len({e["data"]["run"] for e in sent}) == 2, sent
    for event in sent:  # the refused attempts before the restart, the accepted ones after it
        data = event["data"]
        assert (data["environment"], data["commit"], data["repository"]) == (
            "production",
            sha,
            REPOSITORY,
        ), event
    deployments = [d for d in peers.github.deployments() if d["sha"] == sha]
    assert [[s["state"] for s in d["statuses"]] for d in deployments] == [
        ["in_progress", "success"],
        ["in_progress", "success"],
    ], deployments
    assert {d["environment"] for d in deployments} == {"production"}


def restart_twice(
    cluster: ClusterAccess, ns: str, hook: WebhookPeer, peers: Peers, operator: OperatorProcess
) -> None:
    """Run 1's success pending at a SIGKILL, run 2's at a SIGTERM; each sent after a restart."""
    for run, stop in ((1, operator.kill), (2, operator.stop)):
        if run == 2:
            cluster.kubectl("annotate", "dj/restarted", "-n", ns, "deploybell.io/redeploy=2")
        wait_dj(
            cluster,
            ns,
            "restarted",
            f"run {run} verifying, its start sent",
            lambda s, run=run: (
                s.get("run") == run
                and s.get("phase") == "Verifying"
                and delivered(s, run, "start") == {"github", "hook"}
            ),
        )
        hook.status = 503  # refused until the restart (the backoff stays short: seconds)
        peers.github.respond_next(1000, 502)
        wait_dj(cluster, ns, "restarted", f"run {run}'s success pending", pending_outcome(run))
        stop()
        hook.status = 204
        peers.github.clear()
        operator.start()
        wait_dj(
            cluster,
            ns,
            "restarted",
            f"run {run}'s success sent after the restart",
            lambda s, run=run: delivered(s, run, "success") == {"github", "hook"},
            timeout=60,
        )
