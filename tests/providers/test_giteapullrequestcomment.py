"""Gitea / Forgejo pull-request comments against the local Gitea API: one comment per run,
edited with the outcome; found again by its marker after a crash between the POST and the ledger
write; posted again when someone deleted it; a pull request Gitea does not have (its 500), a
token without the issue scope, the pull request read from a `…/pulls/N` link; notify-test with
an issue-only token."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.giteapullrequestcomment import GiteaPullRequestCommentProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.gitea_pulls import ISSUE_TOKEN, GiteaPullsPeer


@pytest.fixture
def peer() -> Iterator[GiteaPullsPeer]:
    with GiteaPullsPeer(repositories={"acme/web": {SAMPLE_SHA}}, pulls=(42, 7)) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GiteaPullRequestCommentProvider]:
    sender = GiteaPullRequestCommentProvider()
    yield sender
    await sender.close()


def destination(
    peer: GiteaPullsPeer,
    previous: Mapping[str, str] | None = None,
    token: str = ISSUE_TOKEN,
    **options: Any,
) -> Destination:
    return Destination(
        type="giteapullrequestcomment",
        recipient="",
        options=options,
        secret={"token": token, "apiUrl": peer.base_url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_one_comment_per_run_edited_with_the_outcome(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("failure"), destination(peer, started.refs))

    [comment] = peer.comments()
    assert started.refs == ended.refs == {"comment": str(comment["id"]), "repository": "acme/web"}
    assert comment["issue"] == 42
    assert comment["edits"] == 1
    assert comment["body"].startswith("<!-- deploybell run team-a/web#3 ")
    assert "### ✖ team-a/web failed on prod-eu (run 3)" in comment["body"]
    assert "started on prod-eu" not in comment["body"]
    assert [(c.method, c.path) for c in peer.received][-1] == (
        "PATCH",
        f"/api/v1/repos/acme/web/issues/comments/{comment['id']}",
    )


async def test_a_crash_before_the_ledger_write_finds_the_comment_by_its_marker(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
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
    methods = [c.method for c in peer.received if "comments" in c.path]
    assert methods[:6] == ["GET", "POST", "GET", "PATCH", "GET", "PATCH"]


async def test_a_comment_older_than_the_run_is_not_searched(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    """The search asks Gitea only for comments updated since the run started."""
    await provider.send(message("start"), destination(peer))
    [listing] = [c for c in peer.received if c.method == "GET"]
    assert listing.path == "/api/v1/repos/acme/web/issues/42/comments"
    later = message("start", started_at="2099-01-01T00:00:00Z")
    await provider.send(later, destination(peer))
    assert len(peer.comments()) == 2  # the first is not "since" 2099: a new one is posted


async def test_a_deleted_comment_is_posted_again(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    sent = await provider.send(message("success"), destination(peer, {"comment": "999999"}))
    [comment] = peer.comments()
    assert sent.refs["comment"] == str(comment["id"]) != "999999"


async def test_the_pull_request_comes_from_a_pulls_link_or_the_error_says_where(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    only_url = message(
        "start", repository="", change_url="https://git.example.com/acme/web/pulls/7"
    )
    sent = await provider.send(dataclasses.replace(only_url, pull_request=7), destination(peer))
    assert sent.refs["repository"] == "acme/web"
    assert [c["issue"] for c in peer.comments()] == [7]
    with pytest.raises(PermanentDeliveryError, match=r"spec\.source\.pullRequest"):
        await provider.send(message("start", pull_request=0), destination(peer))
    # Gitea answers an index it does not have with a 500: permanent, not retried.
    with pytest.raises(PermanentDeliveryError, match="no such pull request") as missing:
        await provider.send(message("start", pull_request=9), destination(peer))
    assert "acme/web#9" in missing.value.message


async def test_a_token_without_the_issue_scope_and_a_wrong_token_are_permanent(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    statuses_only = GiteaPullsPeer(
        repositories={"acme/web": {SAMPLE_SHA}}, scopes=frozenset({"write:repository"})
    )
    with statuses_only, pytest.raises(PermanentDeliveryError, match="HTTP 403") as scope:
        await provider.send(message("start"), destination(statuses_only))
    assert "required=[read:issue]" in scope.value.message  # the search comes first
    with pytest.raises(PermanentDeliveryError, match="401") as refused:
        await provider.send(message("start"), destination(peer, token="gitea-wrong-token-123"))
    assert "gitea-wrong-token-123" not in refused.value.message


async def test_notify_test_reads_issues_and_posts_nothing(
    peer: GiteaPullsPeer, provider: GiteaPullRequestCommentProvider
) -> None:
    test = labelled_message("team-a", "pull-requests", "success")
    named = await provider.send(test, destination(peer, repository="acme/web"))
    alone = await provider.send(test, destination(peer))
    assert "can read the issues and pull requests of acme/web" in named.detail
    assert "the token is valid" in alone.detail
    assert peer.comments() == []
    assert [c.path for c in peer.received] == [
        "/api/v1/repos/acme/web/issues",
        "/api/v1/repos/issues/search",
    ]
