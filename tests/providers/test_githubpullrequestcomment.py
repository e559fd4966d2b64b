"""GitHub pull-request comments against the local GitHub API: one comment per run, edited with
the outcome; found again by its marker after a crash between the POST and the ledger write;
posted again when someone deleted it; the errors a missing pull request or token gives."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.githubpullrequestcomment import (
    MAX_BODY,
    GithubPullRequestCommentProvider,
)
from tests.support.peers.github import SAMPLE_SHA
from tests.support.peers.github_pulls import APP_TOKEN, GithubPullsPeer


@pytest.fixture
def peer() -> Iterator[GithubPullsPeer]:
    with GithubPullsPeer(repositories={"acme/web": {SAMPLE_SHA}}, pulls=(42, 7)) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GithubPullRequestCommentProvider]:
    sender = GithubPullRequestCommentProvider()
    yield sender
    await sender.close()


def destination(
    peer: GithubPullsPeer, previous: Mapping[str, str] | None = None, token: str = APP_TOKEN
) -> Destination:
    return Destination(
        type="githubpullrequestcomment",
        recipient="",
        options={},
        secret={"token": token, "apiUrl": peer.api_url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_one_comment_per_run_edited_with_the_outcome(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("failure"), destination(peer, started.refs))

    [comment] = peer.comments()
    assert started.refs == ended.refs == {"comment": str(comment["id"]), "repository": "acme/web"}
    assert comment["issue"] == 42
    assert comment["edits"] == 1
    assert comment["body"].startswith("<!-- deploybell run team-a/web#3 ")
    assert "### ✖ team-a/web failed on prod-eu (run 3)" in comment["body"]
    assert "web-7d9f8-x2kqp" in comment["body"]
    assert "started on prod-eu" not in comment["body"]


async def test_a_crash_before_the_ledger_write_finds_the_comment_by_its_marker(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    await provider.send(message("start"), destination(peer))
    # The id never reached the ledger: the retried start and the outcome come without refs.
    again = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("success"), destination(peer))
    await provider.send(message("start", run=4), destination(peer))  # another run: its own

    first, second = peer.comments()
    assert again.refs["comment"] == ended.refs["comment"] == str(first["id"])
    assert first["edits"] == 2
    assert "succeeded on prod-eu (run 3)" in first["body"]
    assert "(run 4)" in second["body"]
    # Without refs each send looks for the run's comment first; only the first posts.
    methods = [c.method for c in peer.received if "comments" in c.path]
    assert methods[:6] == ["GET", "POST", "GET", "PATCH", "GET", "PATCH"]


async def test_a_deleted_comment_is_posted_again(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    sent = await provider.send(message("success"), destination(peer, {"comment": "999999"}))
    [comment] = peer.comments()
    assert sent.refs["comment"] == str(comment["id"]) != "999999"


async def test_the_pull_request_comes_from_the_url_or_the_error_says_where(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    await provider.send(message("start", pull_request=7), destination(peer))
    assert [c["issue"] for c in peer.comments()] == [7]
    with pytest.raises(PermanentDeliveryError, match=r"spec\.source\.pullRequest"):
        await provider.send(message("start", pull_request=0), destination(peer))
    with pytest.raises(PermanentDeliveryError, match="HTTP 404") as missing:
        await provider.send(message("start", pull_request=9), destination(peer))
    assert "acme/web#9" in missing.value.message


async def test_a_wrong_token_is_refused_and_masked(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="401") as refused:
        await provider.send(message("start"), destination(peer, token="ghp_wrong-token-123"))
    assert "ghp_wrong-token-123" not in refused.value.message


async def test_a_huge_run_fits_githubs_limit(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    huge = message(
        "failure", message="x" * 200_000, images=tuple(f"i{n}" * 500 for n in range(200))
    )
    await provider.send(huge, destination(peer))
    [comment] = peer.comments()
    assert len(comment["body"]) <= MAX_BODY


async def test_the_repository_may_come_from_the_pull_request_link_alone(
    peer: GithubPullsPeer, provider: GithubPullRequestCommentProvider
) -> None:
    only_url = message("start", repository="", change_url="https://github.com/acme/web/pull/7")
    sent = await provider.send(dataclasses.replace(only_url, pull_request=7), destination(peer))
    assert sent.refs["repository"] == "acme/web"
    assert [c["issue"] for c in peer.comments()] == [7]
