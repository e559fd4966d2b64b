"""The GitLab provider against a local GitLab API: a deployment per run (running, then its
outcome), external commit statuses, URL-encoded project paths, no second deployment after a
crash, retries whose first attempt landed, GitLab's errors and rate limits."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    mask,
)
from deploybell.notify.providers.gitlab import GitlabProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.gitlab import SAMPLE_SHA, GitlabPeer

TOKEN = "glpat-unit-token-3e5d7f9a"
PROJECT = "acme/platform/web"


@pytest.fixture
def peer() -> Iterator[GitlabPeer]:
    with GitlabPeer(token=TOKEN, projects={PROJECT: {SAMPLE_SHA}}) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GitlabProvider]:
    gitlab = GitlabProvider()
    yield gitlab
    await gitlab.close()


def destination(
    peer: GitlabPeer,
    previous: Mapping[str, str] | None = None,
    token: str = TOKEN,
    api_url: str | None = None,
    **options: Any,
) -> Destination:
    return Destination(
        type="gitlab",
        recipient="",
        options={"commitStatus": False, **options},
        secret={"token": token, "apiUrl": peer.url if api_url is None else api_url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    started = "2020-01-01T00:00:00Z"  # before the peer creates anything
    fields = {"repository": "https://gitlab.com/acme/platform/web.git", "started_at": started}
    return dataclasses.replace(sample(event), run=run, **{**fields, **changes})


async def test_a_run_is_one_deployment_running_then_its_outcome(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    started = await provider.send(message("start"), destination(peer, commitStatus=True))
    ended = await provider.send(
        message("success"), destination(peer, started.refs, commitStatus=True)
    )
    [deployment] = peer.deployments(PROJECT)
    assert started.refs == ended.refs == {"deployment": str(deployment["id"]), "project": PROJECT}
    assert deployment["history"] == ["running", "success"]
    assert (deployment["sha"], deployment["ref"]) == (SAMPLE_SHA, SAMPLE_SHA)
    assert deployment["environment"]["name"] == "production"
    [status] = peer.statuses(PROJECT)  # one external job, updated in place
    assert (status["name"], status["status"]) == ("deploybell/team-a/web", "success")
    assert status["description"].startswith("✔ team-a/web succeeded on prod-eu (run 3)")
    paths = {c.path.split("?")[0] for c in peer.received}
    assert "/api/v4/projects/acme%2Fplatform%2Fweb/deployments" in paths
    assert all(c.status < 300 for c in peer.received)


@pytest.mark.parametrize(("event", "state"), [("failure", "failed"), ("cancel", "canceled")])
async def test_failure_and_cancel(
    peer: GitlabPeer, provider: GitlabProvider, event: str, state: str
) -> None:
    started = await provider.send(message("start"), destination(peer, commitStatus=True))
    await provider.send(message(event), destination(peer, started.refs, commitStatus=True))
    [deployment] = peer.deployments(PROJECT)
    assert deployment["history"] == ["running", state]
    assert peer.statuses(PROJECT)[-1]["status"] == state


async def test_a_branch_ref_and_the_api_root_as_url(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    target = destination(peer, api_url=peer.url + "/api/v4/", ref="main", project=PROJECT)
    await provider.send(message("start", repository=""), target)
    [deployment] = peer.deployments(PROJECT)
    assert deployment["ref"] == "main"


async def test_a_start_sent_again_after_a_crash_finds_its_deployment(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    first = await provider.send(message("start"), destination(peer, commitStatus=True))
    again = await provider.send(message("start"), destination(peer, commitStatus=True))
    assert first.refs == again.refs
    assert len(peer.deployments(PROJECT)) == 1
    assert len(peer.statuses(PROJECT)) == 1  # "Cannot transition … from :running" is success


async def test_an_update_whose_answer_was_lost_is_not_an_error(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    await provider.send(message("success"), destination(peer, started.refs))
    sent = await provider.send(message("success"), destination(peer, started.refs))
    assert sent.refs == started.refs
    assert peer.deployments(PROJECT)[0]["history"] == ["running", "success"]


async def test_an_outcome_without_a_start_and_a_deleted_deployment(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    await provider.send(message("failure"), destination(peer))
    await provider.send(message("success", run=4), destination(peer, {"deployment": "999"}))
    assert [d["history"] for d in peer.deployments(PROJECT)] == [["failed"], ["success"]]


@pytest.mark.parametrize(
    ("changes", "secret", "said"),
    [
        ({"commit": ""}, {}, "has no spec.source.revision"),
        ({"repository": ""}, {}, "the Notification no gitlab.project"),
        (
            {"repository": "https://git.example/acme/web"},
            {"apiUrl": ""},
            "set the Secret's apiUrl to the URL of git.example",
        ),
        ({}, {"apiUrl": "ftp://gitlab.example"}, "'apiUrl' must be an absolute http"),
    ],
)
async def test_what_cannot_be_recorded_is_named(
    peer: GitlabPeer,
    provider: GitlabProvider,
    changes: dict[str, str],
    secret: dict[str, str],
    said: str,
) -> None:
    target = destination(peer)
    target = dataclasses.replace(target, secret={**target.secret, **secret})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", **changes), target)
    assert said in caught.value.message
    # What the DeployJob's status will show: the dispatcher masks URL paths, none is needed.
    assert mask(caught.value.message, ()) == caught.value.message
    assert peer.received == []


async def test_an_environment_name_gitlab_refuses(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", environment="prod#1"), destination(peer))
    assert "HTTP 400" in caught.value.message


@pytest.mark.parametrize(
    ("scopes", "role", "said"),
    [
        (frozenset({"read_api"}), "developer", "insufficient_scope"),
        (frozenset({"api"}), "reporter", "403 Forbidden"),
    ],
)
async def test_a_token_that_may_not_deploy_is_permanent(
    provider: GitlabProvider, scopes: frozenset[str], role: str, said: str
) -> None:
    with (
        GitlabPeer(
            token=TOKEN, projects={PROJECT: {SAMPLE_SHA}}, scopes=scopes, role=role
        ) as limited,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        await provider.send(message("start"), destination(limited))
    assert "HTTP 403" in caught.value.message
    assert said in caught.value.message


async def test_a_wrong_token_is_permanent_and_masked(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start"), destination(peer, token="glpat-wrong-value"))
    assert "HTTP 401" in caught.value.message
    assert "glpat-wrong-value" not in caught.value.message


async def test_rate_limits_and_server_errors_are_temporary(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    peer.rate_limit(12)
    with pytest.raises(TemporaryDeliveryError) as limited:
        await provider.send(message("start"), destination(peer))
    assert limited.value.retry_after == 12
    peer.respond_next(1, 503, body=f"maintenance {TOKEN}")
    with pytest.raises(TemporaryDeliveryError) as down:
        await provider.send(message("start"), destination(peer))
    assert TOKEN not in down.value.message


async def test_notify_test_checks_the_token_and_records_nothing(
    peer: GitlabPeer, provider: GitlabProvider
) -> None:
    test = labelled_message("team-a", "environments", "success")
    sent = await provider.send(test, destination(peer, project=PROJECT))
    assert f"the token can see {PROJECT}" in sent.detail
    sent = await provider.send(test, destination(peer))
    assert "the token is valid" in sent.detail
    with pytest.raises(PermanentDeliveryError):
        await provider.send(test, destination(peer, project="acme/none"))
    assert peer.deployments(PROJECT) == []
