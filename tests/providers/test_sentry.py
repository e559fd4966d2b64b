"""Sentry against a local Sentry API: a deploy of the commit's release per finished run (the
release made first when missing, with the commit as its ref), nothing at start, every outcome
or only successes, no second deploy on a retry, Sentry's errors and rate limits."""

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
from deploybell.notify.providers.sentry import SentryProvider
from tests.support.peers.sentry import SentryPeer

SHA = sample().commit
VERSION = f"web@{SHA}"


@pytest.fixture
def peer() -> Iterator[SentryPeer]:
    with SentryPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[SentryProvider]:
    sender = SentryProvider()
    yield sender
    await sender.close()


def destination(peer: SentryPeer, token: str = "", **options: Any) -> Destination:
    return Destination(
        type="sentry",
        recipient="",
        options={"organization": "acme", "projects": "web", "versionPrefix": "web@", **options},
        secret={"token": token or peer.token, "apiUrl": peer.url},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_a_finished_run_is_a_deploy_of_its_release_made_when_missing(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    assert peer.received == []
    assert "nothing to send" in started.detail
    await provider.send(message("success"), destination(peer))
    await provider.send(message("failure", run=4), destination(peer))

    [release] = peer.releases().values()
    assert (release["version"], release["ref"], release["projects"]) == (VERSION, SHA, ["web"])
    first, second = release["deploys"]
    assert first["environment"] == "production"
    assert first["name"] == "team-a/web succeeded on prod-eu (run 3)"
    assert (first["dateStarted"], first["dateFinished"]) == (
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:01:05Z",
    )
    assert second["name"] == "team-a/web failed on prod-eu (run 4)"
    # the release was created once: the second run's deploy found it
    assert [c.method for c in peer.received if c.path.endswith("/releases/")] == ["POST"]


async def test_success_only_records_no_failed_run(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    sent = await provider.send(message("failure"), destination(peer, successOnly=True))
    assert "successOnly" in sent.detail
    assert peer.deploys() == []


async def test_a_retry_after_a_lost_answer_makes_no_second_deploy(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    first = await provider.send(message("success"), destination(peer))
    again = await provider.send(message("success"), destination(peer))
    assert len(peer.deploys()) == 1
    assert first.refs == again.refs == {"deploy": peer.deploys()[0]["id"], "release": VERSION}


async def test_without_projects_a_missing_release_cannot_be_made(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"sentry\.projects"):
        await provider.send(message("success"), destination(peer, projects=""))


async def test_an_unknown_project_and_a_wrong_token_are_sentrys_errors_masked(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="400"):
        await provider.send(message("success"), destination(peer, projects="ghost"))
    with pytest.raises(PermanentDeliveryError, match="Invalid token") as refused:
        await provider.send(message("success"), destination(peer, token="sntrys_wrong-42"))
    assert "sntrys_wrong-42" not in refused.value.message


async def test_a_rate_limit_waits_until_sentrys_reset(
    peer: SentryPeer, provider: SentryProvider
) -> None:
    peer.rate_limit(30)
    with pytest.raises(TemporaryDeliveryError, match="too frequently") as limited:
        await provider.send(message("success"), destination(peer))
    assert limited.value.retry_after is not None
    assert 28 <= limited.value.retry_after <= 30
