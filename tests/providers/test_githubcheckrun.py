"""GitHub check runs against the local GitHub API: one check run per run, completed with the
outcome's conclusion; found again by its external_id after a crash; a personal access token
refused as GitHub refuses it; a huge report within the 65535-byte summary."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.githubcheckrun import MAX_SUMMARY, GithubCheckRunProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.github import SAMPLE_SHA
from tests.support.peers.github_pulls import GithubPullsPeer


@pytest.fixture
def peer() -> Iterator[GithubPullsPeer]:
    with GithubPullsPeer(repositories={"acme/web": {SAMPLE_SHA}}) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GithubCheckRunProvider]:
    sender = GithubCheckRunProvider()
    yield sender
    await sender.close()


def destination(
    peer: GithubPullsPeer, previous: Mapping[str, str] | None = None, token: str = ""
) -> Destination:
    return Destination(
        type="githubcheckrun",
        recipient="",
        options={},
        secret={"token": token or peer.token, "apiUrl": peer.api_url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


@pytest.mark.parametrize(
    ("outcome", "conclusion"),
    [("success", "success"), ("failure", "failure"), ("cancel", "cancelled")],
)
async def test_a_run_is_one_check_run_completed_with_the_outcome(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider, outcome: str, conclusion: str
) -> None:
    started = await provider.send(message("start"), destination(peer))
    ended = await provider.send(message(outcome), destination(peer, started.refs))

    [check] = peer.check_runs(SAMPLE_SHA)
    assert started.refs == ended.refs == {"checkRun": str(check["id"]), "repository": "acme/web"}
    assert check["name"] == "deploybell/team-a/web"
    assert check["history"] == ["in_progress", conclusion]
    assert (check["status"], check["conclusion"]) == ("completed", conclusion)
    assert check["details_url"] == "https://dashboard.example/team-a/web"
    assert check["output"]["title"].startswith(f"{sample(outcome).symbol} team-a/web")


async def test_a_crash_before_the_ledger_write_finds_the_check_run(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider
) -> None:
    await provider.send(message("start", run=2), destination(peer))
    await provider.send(message("start"), destination(peer))
    await provider.send(message("success"), destination(peer))  # no refs: the ledger lost them

    older, check = peer.check_runs(SAMPLE_SHA)
    assert check["history"] == ["in_progress", "success"]
    assert older["history"] == ["in_progress"]


async def test_an_outcome_without_a_start_creates_the_check_run_completed(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider
) -> None:
    await provider.send(message("failure"), destination(peer))
    [check] = peer.check_runs(SAMPLE_SHA)
    assert check["history"] == ["failure"]
    assert check["head_sha"] == SAMPLE_SHA


async def test_a_personal_access_token_is_refused_as_github_refuses_it(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider
) -> None:
    pat = "github_pat_11ABCDEF0123456789"
    peer.token = pat
    with pytest.raises(PermanentDeliveryError, match="You must authenticate via a GitHub App"):
        await provider.send(message("start"), destination(peer, token=pat))
    assert peer.check_runs() == []


async def test_a_huge_report_fits_the_summary_in_bytes(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider
) -> None:
    huge = message("failure", message="ü" * 100_000, images=tuple("é" * 900 for _ in range(100)))
    await provider.send(huge, destination(peer))
    [check] = peer.check_runs(SAMPLE_SHA)
    assert len(check["output"]["summary"].encode()) <= MAX_SUMMARY
    assert "…" in check["output"]["summary"]


async def test_notify_test_says_when_the_token_is_not_an_apps(
    peer: GithubPullsPeer, provider: GithubCheckRunProvider
) -> None:
    sent = await provider.send(labelled_message("team-a", "checks", "start"), destination(peer))
    assert "a test records nothing" in sent.detail
    pat = "github_pat_11ABCDEF0123456789"
    peer.token = pat
    with pytest.raises(PermanentDeliveryError, match="no GitHub App installation token"):
        await provider.send(
            labelled_message("team-a", "checks", "start"), destination(peer, token=pat)
        )
    assert peer.check_runs() == []
