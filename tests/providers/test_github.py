"""The GitHub provider against a local GitHub API: one deployment per run whose statuses follow
the run, commit statuses, no second deployment after a crash, GitHub's errors and rate limits."""

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
from deploybell.notify.providers.github import GithubProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.github import SAMPLE_SHA, GithubPeer

TOKEN = "ghp-unit-token-7c1e4a9b"


@pytest.fixture
def peer() -> Iterator[GithubPeer]:
    repositories = {"acme/web": {SAMPLE_SHA}, "acme/other": {SAMPLE_SHA}}
    with GithubPeer(token=TOKEN, repositories=repositories) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GithubProvider]:
    github = GithubProvider()
    yield github
    await github.close()


def destination(
    peer: GithubPeer,
    previous: Mapping[str, str] | None = None,
    token: str = TOKEN,
    **options: Any,
) -> Destination:
    return Destination(
        type="github",
        recipient="",
        options={"commitStatus": False, **options},
        secret={"token": token, "apiUrl": peer.api_url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_a_run_is_one_deployment_whose_statuses_follow_it(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    started = await provider.send(message("start"), destination(peer, commitStatus=True))
    ended = await provider.send(
        message("success"), destination(peer, started.refs, commitStatus=True)
    )

    [deployment] = peer.deployments()
    assert (
        started.refs
        == ended.refs
        == {"deployment": str(deployment["id"]), "repository": "acme/web"}
    )
    assert (deployment["sha"], deployment["ref"]) == (SAMPLE_SHA, SAMPLE_SHA)
    assert deployment["environment"] == "production"
    assert deployment["payload"]["deploybell"]["run"] == 3
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", "success"]
    last = deployment["statuses"][-1]
    assert last["description"].startswith("✔ team-a/web succeeded on prod-eu (run 3)")
    assert last["log_url"] == "https://dashboard.example/team-a/web"
    statuses = peer.commit_statuses()
    assert [(s["context"], s["state"]) for s in statuses] == [
        ("deploybell/team-a/web", "pending"),
        ("deploybell/team-a/web", "success"),
    ]
    create = next(c for c in peer.received if c.method == "POST" and c.path.endswith("s"))
    assert create.json["auto_merge"] is False
    assert create.json["required_contexts"] == []


@pytest.mark.parametrize(
    ("event", "deployment_state", "commit_state"),
    [("failure", "failure", "failure"), ("cancel", "inactive", "error")],
)
async def test_failure_and_cancel(
    peer: GithubPeer,
    provider: GithubProvider,
    event: str,
    deployment_state: str,
    commit_state: str,
) -> None:
    started = await provider.send(message("start"), destination(peer, commitStatus=True))
    await provider.send(message(event), destination(peer, started.refs, commitStatus=True))
    [deployment] = peer.deployments()
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", deployment_state]
    assert peer.commit_statuses()[-1]["state"] == commit_state


async def test_a_start_sent_again_after_a_crash_finds_its_deployment(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    """The operator died after GitHub created the deployment but before the ledger kept its id:
    the retried start finds it by the run in its payload."""
    first = await provider.send(message("start"), destination(peer))
    again = await provider.send(message("start"), destination(peer))
    other_run = await provider.send(message("start", run=4), destination(peer))
    assert first.refs == again.refs != other_run.refs
    assert len(peer.deployments()) == 2


async def test_an_outcome_without_a_start_makes_one_deployment(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    await provider.send(message("success"), destination(peer))
    await provider.send(message("success"), destination(peer))  # retried: not a second one
    [deployment] = peer.deployments()
    assert [s["state"] for s in deployment["statuses"]] == ["success", "success"]


async def test_a_deployment_deleted_since_the_start_is_made_again(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    sent = await provider.send(message("failure"), destination(peer, {"deployment": "999999"}))
    [deployment] = peer.deployments()
    assert sent.refs["deployment"] == str(deployment["id"])
    assert [s["state"] for s in deployment["statuses"]] == ["failure"]


async def test_the_repository_option_and_github_enterprise(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    elsewhere = message("start", repository="https://ghe.example/acme/web")
    sent = await provider.send(elsewhere, destination(peer, repository="acme/other"))
    assert sent.refs["repository"] == "acme/other"
    assert len(peer.deployments("acme/other")) == 1
    call = peer.received[-1]
    assert call.path.startswith("/api/v3/repos/acme/other/")


@pytest.mark.parametrize(
    ("changes", "options", "secret", "said"),
    [
        ({"commit": ""}, {}, {}, "has no spec.source.revision"),
        (
            {"repository": ""},
            {},
            {},
            "no spec.source.repository and the Notification no github.repository",
        ),
        (
            {"repository": "https://ghe.example/acme/web"},
            {},
            {"apiUrl": ""},
            "set the Secret's apiUrl to the API of ghe.example",
        ),
        (
            {"repository": "https://github.com/acme"},
            {},
            {},
            "names no repository: its path must be owner/name",
        ),
        ({}, {}, {"token": "two words"}, "'token' must be one word"),
    ],
)
async def test_what_cannot_be_recorded_is_named(
    peer: GithubPeer,
    provider: GithubProvider,
    changes: dict[str, str],
    options: dict[str, Any],
    secret: dict[str, str],
    said: str,
) -> None:
    target = destination(peer, **options)
    target = dataclasses.replace(target, secret={**target.secret, **secret})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", **changes), target)
    assert said in caught.value.message
    # What the DeployJob's status will show: the dispatcher masks URL paths, none is needed.
    assert mask(caught.value.message, ()) == caught.value.message
    assert peer.received == []


async def test_a_commit_github_does_not_have_is_refused(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", commit="ab" * 20), destination(peer))
    assert "HTTP 422" in caught.value.message
    assert f"No ref found for: {'ab' * 20}" in caught.value.message


async def test_bad_credentials_are_permanent_and_masked(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start"), destination(peer, token="ghp-wrong-secret-1"))
    assert "HTTP 401" in caught.value.message
    assert "Bad credentials" in caught.value.message
    assert "ghp-wrong-secret-1" not in caught.value.message


async def test_a_token_without_the_deployments_permission_is_permanent(
    provider: GithubProvider,
) -> None:
    with (
        GithubPeer(token=TOKEN, permissions=frozenset({"statuses"})) as limited,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        await provider.send(message("start"), destination(limited))
    assert "Resource not accessible by personal access token" in caught.value.message


async def test_server_errors_are_temporary_and_never_show_the_token(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    peer.respond_next(1, 502, body=f'{{"message": "upstream said {TOKEN}"}}')
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("start"), destination(peer))
    assert "HTTP 502" in caught.value.message
    assert TOKEN not in caught.value.message


async def test_the_primary_rate_limit_waits_until_the_reset(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    """GitHub's primary limit is a 403 with no requests left: retried, not a permanent error."""
    peer.rate_limit(30, primary=True)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("start"), destination(peer))
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30
    sent = await provider.send(message("start"), destination(peer))
    assert sent.refs["deployment"]


async def test_notify_test_checks_the_token_and_records_nothing(
    peer: GithubPeer, provider: GithubProvider
) -> None:
    test = labelled_message("team-a", "deployments", "success")
    sent = await provider.send(test, destination(peer, repository="acme/web"))
    assert "the token can read acme/web" in sent.detail
    sent = await provider.send(test, destination(peer))
    assert "the token is valid" in sent.detail
    with pytest.raises(PermanentDeliveryError):
        await provider.send(test, destination(peer, token="ghp-wrong-token-2"))
    assert peer.deployments() == []
    assert peer.commit_statuses() == []
