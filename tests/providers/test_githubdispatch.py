"""The GitHub repository_dispatch provider against the local GitHub API: the repository of the
DeployJob's spec.source, GitHub's limits on a dispatch, the token's permission, notify-test."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.githubdispatch import GithubdispatchProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.github import DEFAULT_TOKEN
from tests.support.peers.githubdispatch import GithubDispatchPeer


@pytest.fixture
def peer() -> Iterator[GithubDispatchPeer]:
    with GithubDispatchPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GithubdispatchProvider]:
    dispatch = GithubdispatchProvider()
    yield dispatch
    await dispatch.close()


def destination(peer: GithubDispatchPeer, api: bool = True, **options: Any) -> Destination:
    secret = {"token": DEFAULT_TOKEN, **({"apiUrl": peer.api_url} if api else {})}
    options = {"eventType": "deploybell", **options}
    return Destination(type="githubdispatch", recipient="", options=options, secret=secret)


async def test_each_event_dispatches_to_the_repository_of_spec_source(
    peer: GithubDispatchPeer, provider: GithubdispatchProvider
) -> None:
    for event in ("start", "failure"):
        sent = await provider.send(sample(event), destination(peer, eventType="deployed"))
        assert sent.detail == "dispatched deployed to acme/web"

    start, failure = peer.dispatches("acme/web")
    assert [start["event_type"], failure["event_type"]] == ["deployed", "deployed"]
    payload = failure["client_payload"]
    assert len(payload) == 10
    assert (payload["event"], payload["job"], payload["run"]) == ("failure", "web", 3)
    assert payload["commit"] == sample().commit
    assert payload["deploybell"]["pods"][0]["reason"] == "CrashLoopBackOff"
    assert start["client_payload"]["event"] == "start"


async def test_a_token_that_cannot_write_contents_is_permanent(
    provider: GithubdispatchProvider,
) -> None:
    with GithubDispatchPeer(permissions=frozenset()) as peer:
        with pytest.raises(PermanentDeliveryError, match=r"HTTP 403.*Resource not accessible"):
            await provider.send(sample("start"), destination(peer))
        assert peer.dispatches() == []


async def test_without_a_repository_the_error_names_what_to_set(
    peer: GithubDispatchPeer, provider: GithubdispatchProvider
) -> None:
    message = dataclasses.replace(sample("start"), repository="")
    with pytest.raises(
        PermanentDeliveryError, match=r"no spec\.source\.repository.*githubdispatch"
    ):
        await provider.send(message, destination(peer))


async def test_the_repository_option_wins_over_spec_source(
    provider: GithubdispatchProvider,
) -> None:
    with GithubDispatchPeer() as peer:
        peer.repositories["acme/hooks"] = peer.repositories.pop("acme/web")
        await provider.send(sample("success"), destination(peer, repository="acme/hooks"))
        assert [d["client_payload"]["event"] for d in peer.dispatches("acme/hooks")] == ["success"]


async def test_a_repository_on_another_host_needs_the_api_url(
    peer: GithubDispatchPeer, provider: GithubdispatchProvider
) -> None:
    message = dataclasses.replace(sample("start"), repository="https://git.corp.example/acme/web")
    with pytest.raises(PermanentDeliveryError, match=r"on git\.corp\.example, not github\.com"):
        await provider.send(message, destination(peer, api=False))


async def test_notify_test_checks_the_token_and_dispatches_nothing(
    peer: GithubDispatchPeer, provider: GithubdispatchProvider
) -> None:
    sent = await provider.send(
        labelled_message("team-a", "workflows", "start"), destination(peer, repository="acme/web")
    )
    assert sent.detail.startswith("the token can read")
    assert peer.dispatches() == []
