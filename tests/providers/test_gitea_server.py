"""The gitea provider against a real Gitea built from its Go module (`hack/cluster/build.sh
gitea`): what Gitea stores and shows for a run, across a restart; a commit it does not have, a
token without the write scope and a notify-test, as Gitea itself answers them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.gitea import GiteaProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.gitea import OWNER, GiteaServer, binary


@pytest.fixture(scope="module")
def gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiteaServer]:
    server = GiteaServer(binary(), Path(tmp_path_factory.mktemp("gitea")) / "work").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def commit(gitea: GiteaServer) -> str:
    return gitea.repository("web")


@pytest.fixture(scope="module")
def writer(gitea: GiteaServer) -> str:
    return gitea.token("write:repository")


@pytest.fixture
async def provider() -> AsyncIterator[GiteaProvider]:
    sender = GiteaProvider()
    yield sender
    await sender.close()


def destination(gitea: GiteaServer, token: str, **options: Any) -> Destination:
    secret = {"token": token, "apiUrl": gitea.base_url}
    return Destination(type="gitea", recipient="", options=options, secret=secret)


def message(event: str, commit: str, job: str) -> Message:
    repository = f"https://git.example.com/{OWNER}/web.git"
    return dataclasses.replace(sample(event), commit=commit, job=job, repository=repository)


async def test_a_run_shows_pending_then_its_outcome_also_after_a_restart(
    gitea: GiteaServer, commit: str, writer: str, provider: GiteaProvider
) -> None:
    started = await provider.send(message("start", commit, "web"), destination(gitea, writer))
    assert gitea.combined("web", commit)["state"] == "pending"
    restarted = GiteaProvider()  # the outcome from a fresh process, the refs from the ledger
    ended = await restarted.send(message("success", commit, "web"), destination(gitea, writer))
    await restarted.close()
    assert (
        started.refs == ended.refs == {"status": "deploybell/team-a/web", "repository": "acme/web"}
    )
    ours = [s for s in gitea.statuses("web", commit) if s["context"] == "deploybell/team-a/web"]
    assert [s["status"] for s in ours] == ["pending", "success"]
    assert ours[-1]["target_url"] == "https://dashboard.example/team-a/web"
    shown = {s["context"]: s for s in gitea.combined("web", commit)["statuses"]}
    assert shown["deploybell/team-a/web"]["status"] == "success"
    assert shown["deploybell/team-a/web"]["description"].startswith("✔ team-a/web succeeded")


@pytest.mark.parametrize(("event", "state"), [("failure", "failure"), ("cancel", "error")])
async def test_failure_and_cancel_as_gitea_shows_them(
    gitea: GiteaServer, commit: str, writer: str, provider: GiteaProvider, event: str, state: str
) -> None:
    job = f"api-{event}"
    await provider.send(message("start", commit, job), destination(gitea, writer))
    await provider.send(message(event, commit, job), destination(gitea, writer))
    shown = {s["context"]: s["status"] for s in gitea.combined("web", commit)["statuses"]}
    assert shown[f"deploybell/team-a/{job}"] == state


async def test_a_commit_gitea_does_not_have_is_permanent(
    gitea: GiteaServer, writer: str, provider: GiteaProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", "f" * 40, "web"), destination(gitea, writer))
    assert "HTTP 500" in caught.value.message
    assert "no such commit" in caught.value.message


async def test_a_token_without_the_write_scope_is_permanent(
    gitea: GiteaServer, commit: str, provider: GiteaProvider
) -> None:
    reader = gitea.token("read:repository")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("start", commit, "web"), destination(gitea, reader))
    assert "HTTP 403" in caught.value.message
    assert "write:repository" in caught.value.message
    assert reader not in caught.value.message


async def test_notify_test_reads_the_repository_and_sets_nothing(
    gitea: GiteaServer, writer: str, provider: GiteaProvider
) -> None:
    sha = gitea.repository("quiet")
    test = labelled_message("team-a", "commit-status", "success")
    sent = await provider.send(test, destination(gitea, writer, repository=f"{OWNER}/quiet"))
    assert f"the token can read {OWNER}/quiet" in sent.detail
    assert gitea.statuses("quiet", sha) == []
