"""The Bitbucket Data Center provider against a local Bitbucket API under a context path: the
repository from clone and browse URLs, a Bearer token or basic auth (with the XSRF header), a
URL even for an SSH repository without the operator's link, Bitbucket's errors and 429s."""

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
from deploybell.notify.providers.bitbucketserver import BitbucketServerProvider
from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.bitbucketserver import BitbucketServerPeer

REPOSITORY = "ACME/web"


@pytest.fixture
def peer() -> Iterator[BitbucketServerPeer]:
    repositories = {REPOSITORY: {SAMPLE_SHA}, "~alice/tools": {SAMPLE_SHA}}
    with BitbucketServerPeer(repositories=repositories) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[BitbucketServerProvider]:
    bitbucket = BitbucketServerProvider()
    yield bitbucket
    await bitbucket.close()


def destination(peer: BitbucketServerPeer, **secret: str) -> Destination:
    values = {**(secret or {"token": peer.token}), "apiUrl": peer.url}
    return Destination(type="bitbucketserver", recipient="", options={}, secret=values)


def message(event: str, **changes: Any) -> Message:
    fields = {"repository": "https://git.example.com/bitbucket/scm/ACME/web.git", **changes}
    return dataclasses.replace(sample(event), **fields)


@pytest.mark.parametrize(
    ("repository", "path"),
    [
        ("https://git.example.com/bitbucket/scm/ACME/web.git", REPOSITORY),
        ("ssh://git@git.example.com:7999/ACME/web.git", REPOSITORY),
        ("https://git.example.com/bitbucket/projects/ACME/repos/web/browse", REPOSITORY),
        ("https://git.example.com/bitbucket/users/alice/repos/tools/browse", "~alice/tools"),
    ],
)
async def test_the_repository_from_clone_and_browse_urls(
    peer: BitbucketServerPeer, provider: BitbucketServerProvider, repository: str, path: str
) -> None:
    started = await provider.send(message("start", repository=repository), destination(peer))
    ended = await provider.send(message("success", repository=repository), destination(peer))
    assert started.refs == ended.refs == {"status": "deploybell/team-a/web", "repository": path}
    assert [(s.repository, s.state) for s in peer.shown()] == [(path, "SUCCESSFUL")]
    assert {c.status for c in peer.received} == {204}


async def test_basic_auth_sends_the_xsrf_header_and_cancel_is_cancelled(
    peer: BitbucketServerPeer, provider: BitbucketServerProvider
) -> None:
    secret = {"username": peer.username, "password": peer.password}
    await provider.send(message("start"), destination(peer, **secret))
    await provider.send(message("cancel"), destination(peer, **secret))
    assert [s.state for s in peer.statuses()] == ["INPROGRESS", "CANCELLED"]


async def test_without_a_web_link_the_status_links_to_the_commit_on_the_instance(
    peer: BitbucketServerPeer, provider: BitbucketServerProvider
) -> None:
    ssh = "ssh://git@git.example.com:7999/ACME/web.git"
    await provider.send(message("failure", repository=ssh, link=""), destination(peer))
    [shown] = peer.shown()
    assert shown.url == f"{peer.url}/projects/ACME/repos/web/commits/{SAMPLE_SHA}"
    assert shown.state == "FAILED"


async def test_wrong_credentials_and_an_unknown_commit_are_permanent(
    peer: BitbucketServerPeer, provider: BitbucketServerProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as wrong:
        await provider.send(message("start"), destination(peer, token="BBDC-wrong-token-77"))
    with pytest.raises(PermanentDeliveryError) as commit:
        await provider.send(message("start", commit="d" * 40), destination(peer))
    assert "HTTP 401" in wrong.value.message
    assert "BBDC-wrong-token-77" not in wrong.value.message
    assert "HTTP 404" in commit.value.message
    assert "does not exist" in commit.value.message


async def test_the_instance_is_required(provider: BitbucketServerProvider) -> None:
    target = Destination(type="bitbucketserver", recipient="", options={}, secret={"token": "t"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start"), target)
    assert "'apiUrl'" in caught.value.message


async def test_a_rate_limit_is_retried_after_it(
    peer: BitbucketServerPeer, provider: BitbucketServerProvider
) -> None:
    peer.rate_limit(11)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("success"), destination(peer))
    assert caught.value.retry_after == 11
