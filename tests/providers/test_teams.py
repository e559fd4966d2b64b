"""The Teams provider against a local Workflows webhook (trigger, signature, the posted card)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers.base import (
    DeliveryError,
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Title,
)
from deploybell.notify.providers.teams import TeamsProvider
from tests.support.peers.contract import texts
from tests.support.peers.teams import TeamsPeer, TeamsRun

SIG = "sig-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


@pytest.fixture
def peer() -> Iterator[TeamsPeer]:
    with TeamsPeer(sig=SIG) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[TeamsProvider]:
    teams = TeamsProvider()
    yield teams
    await teams.close()


def destination(url: str, options: Mapping[str, Any] | None = None) -> Destination:
    return Destination(
        type="teams", recipient="", options=options or {}, secret={"webhookUrl": url}
    )


def last(peer: TeamsPeer) -> TeamsRun:
    run: TeamsRun = peer.wait_for(lambda got: got and got[-1], what="a trigger request")
    return run


def card_of(run: TeamsRun) -> dict[str, Any]:
    assert run.problems == (), run.problems
    (card,) = run.posted
    return card


async def test_a_failure_becomes_one_red_card_with_facts_diagnosis_and_a_link(
    peer: TeamsPeer, provider: TeamsProvider
) -> None:
    sent = await provider.send(sample("failure"), destination(peer.url))

    run = last(peer)
    assert run.status == 202
    assert sent.refs == {"run": run.run_id}  # a workflow run, never a message id
    assert sent.detail == "HTTP 202 (workflow accepted)"
    assert run.query["sig"] == SIG
    assert run.content_type.startswith("application/json")
    card = card_of(run)
    assert card["type"] == "AdaptiveCard"
    assert card["msteams"] == {"width": "Full"}
    header = card["body"][0]
    assert (header["type"], header["style"]) == ("Container", "attention")
    assert "✖ team-a/web failed on prod-eu (run 3)" in texts(header)
    facts = next(e["facts"] for e in card["body"] if e["type"] == "FactSet")
    assert facts == [{"title": n, "value": v} for n, v in sample("failure").facts()]
    assert {"title": "Duration", "value": "1m05s"} in facts
    assert {"title": "Images", "value": "registry.example/web:1.4.3"} in facts
    shown = texts(card["body"])
    assert "Failing pods" in shown
    assert "pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1, 5 restarts" in shown
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://dashboard.example/team-a/web"}
    ]


@pytest.mark.parametrize(
    ("event", "style"),
    [("start", "accent"), ("success", "good"), ("failure", "attention"), ("cancel", "emphasis")],
)
async def test_the_header_is_coloured_by_outcome(
    peer: TeamsPeer, provider: TeamsProvider, event: str, style: str
) -> None:
    await provider.send(sample(event), destination(peer.url))
    assert card_of(last(peer))["body"][0]["style"] == style


async def test_full_width_off_and_a_template_title(
    peer: TeamsPeer, provider: TeamsProvider
) -> None:
    override = Title(title="web is live", text="")
    await provider.send(sample("success"), destination(peer.url, {"fullWidth": False}), override)
    card = card_of(last(peer))
    assert "msteams" not in card
    assert card["body"][0]["items"][0]["inlines"][0]["text"] == "web is live"
    # An empty template text counts as unset: the default summary is shown.
    assert "RolloutComplete after 1m05s" in texts(card["body"])


async def test_values_are_shown_as_written_never_as_markdown(
    peer: TeamsPeer, provider: TeamsProvider
) -> None:
    pod = PodDiagnosis("web-1", "app", "Error", "**boom** [click](https://evil.example)", 1, 0)
    message = dataclasses.replace(sample("failure"), pods=(pod,), link="javascript:alert(1)")
    await provider.send(message, destination(peer.url))
    card = card_of(last(peer))
    runs = [
        inline
        for element in card["body"]
        if element["type"] == "RichTextBlock"
        for inline in element["inlines"]
    ]
    assert any("**boom** [click](https://evil.example)" in r["text"] for r in runs)
    assert all(r["type"] == "TextRun" for r in runs)  # TextRuns are never Markdown
    assert "actions" not in card  # only an http(s) link becomes a button
    assert any(r["text"] == "Link: javascript:alert(1)" for r in runs)


async def test_an_oversize_message_is_cut_and_still_posted(
    peer: TeamsPeer, provider: TeamsProvider
) -> None:
    pods = tuple(PodDiagnosis(f"web-{i}", "app", "Error", "x" * 5000, 1, 3) for i in range(80))
    huge = dataclasses.replace(sample("failure"), message="y" * 90_000, pods=pods)
    await provider.send(huge, destination(peer.url))
    shown = texts(card_of(last(peer))["body"])
    assert "…" in shown
    assert "… and 70 more" in shown


async def test_a_wrong_signature_is_permanent_and_never_shows_the_url(
    peer: TeamsPeer, provider: TeamsProvider
) -> None:
    url = peer.url.replace(SIG, "sig-wrong-4f1d")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert "HTTP 401" in caught.value.message
    assert "shared access signature is not valid" in caught.value.message
    assert_masked(caught.value, url, "sig-wrong-4f1d", peer.workflow)


async def test_an_unknown_workflow_is_permanent(peer: TeamsPeer, provider: TeamsProvider) -> None:
    url = peer.url.replace(peer.workflow, "deadbeef")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert "HTTP 404" in caught.value.message
    assert_masked(caught.value, url, SIG)


@pytest.mark.parametrize(("status", "retry_after"), [(429, "11"), (503, None), (502, "3")])
async def test_throttling_and_server_errors_are_retried(
    peer: TeamsPeer, provider: TeamsProvider, status: int, retry_after: str | None
) -> None:
    peer.respond_next(1, status, retry_after=retry_after)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url))
    expected = float(retry_after) if retry_after else None
    assert caught.value.retry_after == expected
    assert_masked(caught.value, peer.url, SIG)


async def test_an_unreachable_workflow_is_retried_and_masked(provider: TeamsProvider) -> None:
    with TeamsPeer(sig=SIG) as gone:
        url = gone.url
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert_masked(caught.value, url, SIG)


@pytest.mark.parametrize("url", ["", "ftp://x/y?sig=s3cr3t-value", "not a url"])
async def test_a_bad_webhook_url_is_permanent_without_its_value(
    provider: TeamsProvider, url: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert caught.value.message == (
        "teams: Secret key 'webhookUrl' must be an absolute http:// or https:// URL"
    )


def assert_masked(error: DeliveryError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in error.message, error.message
        assert secret not in str(error), str(error)
