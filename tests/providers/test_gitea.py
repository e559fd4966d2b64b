"""The Gitea / Forgejo provider against a local Gitea API: one commit status per DeployJob,
pending then the outcome, the instance named by URL or API root, Gitea's token scopes, errors
and a rate-limiting proxy's 429."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.gitea import GiteaProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.gitea import GiteaPeer

TOKEN = "gitea-unit-token-1a2b3c4d"
REPOSITORY = "acme/web"


@pytest.fixture
def peer() -> Iterator[GiteaPeer]:
    with GiteaPeer(token=TOKEN, repositories={REPOSITORY: {SAMPLE_SHA}}) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GiteaProvider]:
    gitea = GiteaProvider()
    yield gitea
    await gitea.close()


def destination(peer: GiteaPeer, api_url: str | None = None, **secret: str) -> Destination:
    values = {"token": TOKEN, "apiUrl": peer.base_url if api_url is None else api_url, **secret}
    return Destination(type="gitea", recipient="", options={}, secret=values)


def message(event: str, **changes: Any) -> Message:
    repository = "https://git.example.com/acme/web.git"
    return dataclasses.replace(sample(event), **{"repository": repository, **changes})


async def test_a_run_is_one_status_pending_then_its_outcome(
    peer: GiteaPeer, provider: GiteaProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("success"), destination(peer))
    assert (
        started.refs == ended.refs == {"status": "deploybell/team-a/web", "repository": REPOSITORY}
    )
    assert [(s.name, s.state) for s in peer.statuses()] == [
        ("deploybell/team-a/web", "pending"),
        ("deploybell/team-a/web", "success"),
    ]
    [shown] = peer.shown()
    assert shown.description.startswith("✔ team-a/web succeeded on prod-eu (run 3)")
    assert shown.url == "https://dashboard.example/team-a/web"
    assert {c.path for c in peer.received} == {f"/api/v1/repos/acme/web/statuses/{SAMPLE_SHA}"}


@pytest.mark.parametrize(("event", "state"), [("failure", "failure"), ("cancel", "error")])
async def test_failure_and_cancel(
    peer: GiteaPeer, provider: GiteaProvider, event: str, state: str
) -> None:
    await provider.send(message("start"), destination(peer))
    await provider.send(message(event), destination(peer))
    assert [s.state for s in peer.shown()] == [state]


async def test_the_instance_by_its_api_root_and_the_repository_option(
    peer: GiteaPeer, provider: GiteaProvider
) -> None:
    target = dataclasses.replace(
        destination(peer, api_url=peer.base_url + "/api/v1/"), options={"repository": REPOSITORY}
    )
    await provider.send(message("start", repository=""), target)
    assert [s.state for s in peer.shown()] == ["pending"]


async def test_a_repository_elsewhere_needs_the_api_url(provider: GiteaProvider) -> None:
    target = Destination(type="gitea", recipient="", options={}, secret={"token": TOKEN})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start"), target)
    assert "set the Secret's apiUrl to the URL of git.example.com" in caught.value.message


async def test_a_token_without_the_write_scope_and_a_wrong_token_are_permanent(
    provider: GiteaProvider,
) -> None:
    with GiteaPeer(token=TOKEN, scopes=frozenset({"read:repository"})) as reader:
        with pytest.raises(PermanentDeliveryError) as scope:
            await provider.send(message("start"), destination(reader))
        with pytest.raises(PermanentDeliveryError) as wrong:
            await provider.send(message("start"), destination(reader, token="gitea-wrong-1234"))
    assert "HTTP 403" in scope.value.message
    assert "write:repository" in scope.value.message
    assert "HTTP 401" in wrong.value.message
    assert "gitea-wrong-1234" not in wrong.value.message


async def test_an_unknown_commit_is_permanent(peer: GiteaPeer, provider: GiteaProvider) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", commit="f" * 40), destination(peer))
    assert "HTTP 500" in caught.value.message
    assert "no such commit" in caught.value.message


async def test_a_proxy_rate_limit_is_retried_after_it(
    peer: GiteaPeer, provider: GiteaProvider
) -> None:
    peer.rate_limit(9)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("success"), destination(peer))
    assert caught.value.retry_after == 9


async def test_notify_test_checks_the_token_and_sets_nothing(
    peer: GiteaPeer, provider: GiteaProvider
) -> None:
    test = labelled_message("team-a", "commit-status", "success")
    sent = await provider.send(test, destination(peer))
    assert "the token is valid" in sent.detail
    with_repository = dataclasses.replace(destination(peer), options={"repository": REPOSITORY})
    sent = await provider.send(test, with_repository)
    assert f"the token can read {REPOSITORY}" in sent.detail
    assert peer.statuses() == []
