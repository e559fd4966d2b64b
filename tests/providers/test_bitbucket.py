"""The Bitbucket Cloud provider against a local Bitbucket API: one build status per DeployJob
(its key kept to 40 characters, the same after a restart), overwritten by the outcome; the
three ways to sign in; a URL even without the operator's link; Bitbucket's errors and 429s."""

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
from deploybell.notify.providers.bitbucket import BitbucketProvider
from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.bitbucket import MAX_KEY, BitbucketPeer

REPOSITORY = "acme/web"


@pytest.fixture
def peer() -> Iterator[BitbucketPeer]:
    with BitbucketPeer(repositories={REPOSITORY: {SAMPLE_SHA}}) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[BitbucketProvider]:
    bitbucket = BitbucketProvider()
    yield bitbucket
    await bitbucket.close()


def destination(peer: BitbucketPeer, **secret: str) -> Destination:
    values = secret or {"token": peer.token}
    return Destination(
        type="bitbucket", recipient="", options={}, secret={**values, "apiUrl": peer.url}
    )


def message(event: str, **changes: Any) -> Message:
    fields = {"repository": "https://bitbucket.org/acme/web.git", **changes}
    return dataclasses.replace(sample(event), **fields)


async def test_a_run_is_one_build_status_overwritten_by_its_outcome(
    peer: BitbucketPeer, provider: BitbucketProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    restarted = BitbucketProvider()  # the outcome from a fresh process
    ended = await restarted.send(message("cancel"), destination(peer))
    await restarted.close()
    assert (
        started.refs == ended.refs == {"status": "deploybell/team-a/web", "repository": REPOSITORY}
    )
    assert [c.status for c in peer.received] == [201, 200]  # created, then overwritten
    [shown] = peer.shown()
    assert (shown.state, shown.url) == ("STOPPED", "https://dashboard.example/team-a/web")


@pytest.mark.parametrize(
    "secret",
    [
        {"username": "deploybell@example.com", "password": "ATATT3x-api-token-for-tests"},
        {"token": "deploybell@example.com:ATATT3x-api-token-for-tests"},  # Flux's form
    ],
)
async def test_basic_auth_from_username_and_password_or_a_user_password_token(
    peer: BitbucketPeer, provider: BitbucketProvider, secret: dict[str, str]
) -> None:
    await provider.send(message("success"), destination(peer, **secret))
    assert [s.state for s in peer.shown()] == ["SUCCESSFUL"]


async def test_only_the_credentials_that_set_a_status_may_overwrite_it(
    peer: BitbucketPeer, provider: BitbucketProvider
) -> None:
    await provider.send(message("start"), destination(peer))
    other = {"username": peer.username, "password": peer.password}
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("success"), destination(peer, **other))
    assert "HTTP 403" in caught.value.message
    assert [s.state for s in peer.shown()] == ["INPROGRESS"]


async def test_long_names_get_distinct_stable_keys_and_a_link_to_the_commit(
    peer: BitbucketPeer, provider: BitbucketProvider
) -> None:
    jobs = ("checkout-" + "x" * 60 + "-a", "checkout-" + "x" * 60 + "-b")
    for job in jobs:
        for event in ("start", "success"):
            await provider.send(message(event, job=job, link=""), destination(peer))
    shown = peer.shown()
    assert [s.state for s in shown] == ["SUCCESSFUL", "SUCCESSFUL"]  # two keys, each overwritten
    assert all(len(s.name) == MAX_KEY for s in shown)
    assert shown[0].url == f"https://bitbucket.org/acme/web/commits/{SAMPLE_SHA}"


async def test_a_scope_too_narrow_a_wrong_token_and_an_unknown_commit_are_permanent(
    peer: BitbucketPeer, provider: BitbucketProvider
) -> None:
    with (
        BitbucketPeer(scopes=frozenset({"pullrequest"})) as reader,
        pytest.raises(PermanentDeliveryError) as scope,
    ):
        await provider.send(message("start"), destination(reader))
    with pytest.raises(PermanentDeliveryError) as wrong:
        await provider.send(message("start"), destination(peer, token="ATCTT-wrong-99"))
    with pytest.raises(PermanentDeliveryError) as commit:
        await provider.send(message("start", commit="e" * 40), destination(peer))
    assert "HTTP 403" in scope.value.message
    assert "privilege scopes" in scope.value.message
    assert "HTTP 401" in wrong.value.message
    assert "ATCTT-wrong-99" not in wrong.value.message
    assert "HTTP 404" in commit.value.message
    assert "Commit not found" in commit.value.message


async def test_a_rate_limit_without_retry_after_waits_a_minute(
    peer: BitbucketPeer, provider: BitbucketProvider
) -> None:
    peer.respond_next(1, 429, body='{"type": "error", "error": {"message": "Rate limit"}}')
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(message("success"), destination(peer))
    assert caught.value.retry_after == 60


async def test_a_repository_on_another_host_is_named(provider: BitbucketProvider) -> None:
    target = Destination(type="bitbucket", recipient="", options={}, secret={"token": "t0ken"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", repository="https://git.example/a/b"), target)
    assert "bitbucketserver" in caught.value.message
