"""GitLab merge-request comments against the local GitLab API: one note per run, edited with
the outcome, found again by its marker after a crash before the ledger write, posted again
when deleted; a merge request that does not exist is a permanent error naming it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.gitlabmergerequestcomment import (
    GitlabMergeRequestCommentProvider,
)
from tests.support.peers.gitlab import SAMPLE_SHA
from tests.support.peers.gitlab_notes import GitlabNotesPeer


@pytest.fixture
def peer() -> Iterator[GitlabNotesPeer]:
    with GitlabNotesPeer(projects={"acme/web": {SAMPLE_SHA}}, merge_requests=(42,)) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GitlabMergeRequestCommentProvider]:
    sender = GitlabMergeRequestCommentProvider()
    yield sender
    await sender.close()


def destination(
    peer: GitlabNotesPeer,
    previous: Mapping[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> Destination:
    return Destination(
        type="gitlabmergerequestcomment",
        recipient="",
        options=options if options is not None else {"project": "acme/web"},
        secret={"token": peer.token, "apiUrl": peer.url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_one_note_per_run_edited_with_the_outcome(
    peer: GitlabNotesPeer, provider: GitlabMergeRequestCommentProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("cancel"), destination(peer, started.refs))

    [note] = peer.notes()
    assert started.refs == ended.refs == {"note": str(note["id"]), "project": "acme/web"}
    assert note["noteable_iid"] == 42
    assert note["edits"] == 1
    assert "team-a/web was canceled on prod-eu (run 3)" in note["body"]
    # the project path went URL-encoded, as GitLab needs it
    assert all("/projects/acme%2Fweb/merge_requests/42/notes" in c.path for c in peer.received)


async def test_a_crash_before_the_ledger_write_finds_the_note_by_its_marker(
    peer: GitlabNotesPeer, provider: GitlabMergeRequestCommentProvider
) -> None:
    await provider.send(message("start", run=2), destination(peer))  # an older run's note
    await provider.send(message("start"), destination(peer))
    ended = await provider.send(message("success"), destination(peer))  # no refs: lost

    older, note = peer.notes()
    assert ended.refs["note"] == str(note["id"])
    assert note["edits"] == 1
    assert "succeeded on prod-eu (run 3)" in note["body"]
    assert older["edits"] == 0
    assert "(run 2)" in older["body"]


async def test_a_deleted_note_is_posted_again(
    peer: GitlabNotesPeer, provider: GitlabMergeRequestCommentProvider
) -> None:
    sent = await provider.send(message("success"), destination(peer, {"note": "424242"}))
    [note] = peer.notes()
    assert sent.refs["note"] == str(note["id"])


async def test_a_missing_merge_request_is_named(
    peer: GitlabNotesPeer, provider: GitlabMergeRequestCommentProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="acme/web!9"):
        await provider.send(message("start", pull_request=9), destination(peer))
    with pytest.raises(PermanentDeliveryError, match=r"spec\.source\.pullRequest"):
        await provider.send(message("start", pull_request=0), destination(peer))


async def test_the_project_may_come_from_the_merge_request_link_alone(
    peer: GitlabNotesPeer, provider: GitlabMergeRequestCommentProvider
) -> None:
    link = "https://gitlab.com/acme/web/-/merge_requests/42"
    only_url = message("start", repository="", change_url=link)
    sent = await provider.send(only_url, destination(peer, options={}))
    assert sent.refs["project"] == "acme/web"
    assert len(peer.notes(42)) == 1
