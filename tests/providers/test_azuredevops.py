"""The Azure DevOps provider against a local Azure DevOps Git API: one status context per
DeployJob, the repository from the URLs Azure DevOps clones from, an API version that Azure
DevOps Server 2020 takes too, the 203 sign-in page read as an auth error, errors and 429s."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.azuredevops import AzureDevopsProvider
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.tools.notify_test import labelled_message
from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.azuredevops import AzureDevopsPeer

REPOSITORY = "acme/Platform/web"


@pytest.fixture
def peer() -> Iterator[AzureDevopsPeer]:
    # Azure DevOps Server 2020: the oldest the provider's API version must work with.
    with AzureDevopsPeer(newest="6.0", repositories={REPOSITORY: {SAMPLE_SHA}}) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[AzureDevopsProvider]:
    azure = AzureDevopsProvider()
    yield azure
    await azure.close()


def destination(peer: AzureDevopsPeer, **secret: str) -> Destination:
    values = {"token": peer.token, "apiUrl": peer.url, **secret}
    return Destination(type="azuredevops", recipient="", options={}, secret=values)


def message(event: str, **changes: Any) -> Message:
    fields = {"repository": "https://dev.azure.com/acme/Platform/_git/web", **changes}
    return dataclasses.replace(sample(event), **fields)


@pytest.mark.parametrize(
    "repository",
    [
        "https://dev.azure.com/acme/Platform/_git/web",
        "https://acme@dev.azure.com/acme/Platform/_git/web",
        "https://acme.visualstudio.com/Platform/_git/web",
        "ssh://git@ssh.dev.azure.com/v3/acme/Platform/web",
    ],
)
async def test_a_run_is_one_context_pending_then_its_outcome(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider, repository: str
) -> None:
    started = await provider.send(message("start", repository=repository), destination(peer))
    ended = await provider.send(message("success", repository=repository), destination(peer))
    assert (
        started.refs == ended.refs == {"status": "deploybell/team-a/web", "repository": REPOSITORY}
    )
    assert [s.state for s in peer.statuses()] == ["pending", "succeeded"]
    [shown] = peer.shown()
    assert shown.description.startswith("✔ team-a/web succeeded on prod-eu (run 3)")
    assert {c.path for c in peer.received} == {
        f"/acme/Platform/_apis/git/repositories/web/commits/{SAMPLE_SHA}/statuses"
    }


@pytest.mark.parametrize(("event", "state"), [("failure", "failed"), ("cancel", "error")])
async def test_failure_and_cancel(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider, event: str, state: str
) -> None:
    await provider.send(message(event), destination(peer))
    assert [s.state for s in peer.shown()] == [state]


async def test_the_sign_in_page_and_a_wrong_token_are_auth_errors(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider
) -> None:
    provider.credentials = lambda out: {}  # type: ignore[method-assign]  # no Authorization
    with pytest.raises(PermanentDeliveryError) as unsigned:
        await provider.send(message("start"), destination(peer))
    assert "HTTP 203" in unsigned.value.message
    assert "sign-in page" in unsigned.value.message
    fresh = AzureDevopsProvider()
    with pytest.raises(PermanentDeliveryError) as wrong:
        await fresh.send(message("start"), destination(peer, token="azdo-wrong-pat-5678"))
    await fresh.close()
    assert "HTTP 401" in wrong.value.message
    assert "azdo-wrong-pat-5678" not in wrong.value.message
    assert peer.statuses() == []


async def test_an_unknown_repository_and_commit_are_permanent(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider
) -> None:
    other = "https://dev.azure.com/acme/Platform/_git/none"
    with pytest.raises(PermanentDeliveryError) as repository:
        await provider.send(message("start", repository=other), destination(peer))
    with pytest.raises(PermanentDeliveryError) as commit:
        await provider.send(message("start", commit="c" * 40), destination(peer))
    assert "TF401019" in repository.value.message
    assert "TF401175" in commit.value.message


async def test_a_rate_limit_is_retried_after_it(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider
) -> None:
    peer.rate_limit(13)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("success"), destination(peer))
    assert caught.value.retry_after == 13


async def test_a_deployjob_without_a_revision_is_named(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", commit=""), destination(peer))
    assert "has no spec.source.revision: azuredevops records a status of a commit" in (
        caught.value.message
    )
    assert peer.statuses() == []


async def test_notify_test_needs_the_repository_option(
    peer: AzureDevopsPeer, provider: AzureDevopsProvider
) -> None:
    test = labelled_message("team-a", "commit-status", "success")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(test, destination(peer))
    assert "azuredevops.repository" in caught.value.message
    named = dataclasses.replace(destination(peer), options={"repository": REPOSITORY})
    sent = await provider.send(test, named)
    assert f"the token can read {REPOSITORY}" in sent.detail
    assert peer.statuses() == []
