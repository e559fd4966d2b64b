"""The Google Chat provider against a local space webhook: the run's thread, the card, Google's
errors and rate limits, the `key` and `token` kept and masked."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers.base import (
    DeliveryError,
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.googlechat import GooglechatProvider
from tests.support.peers.contract import texts
from tests.support.peers.googlechat import KEY, TOKEN, GooglechatPeer

REPLY = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"


@pytest.fixture
def peer() -> Iterator[GooglechatPeer]:
    with GooglechatPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GooglechatProvider]:
    chat = GooglechatProvider()
    yield chat
    await chat.close()


def destination(url: str, options: Mapping[str, Any] | None = None) -> Destination:
    return Destination(
        type="googlechat", recipient="", options=options or {}, secret={"webhookUrl": url}
    )


async def test_a_runs_messages_share_one_thread_across_a_restart(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    started = await provider.send(sample("start"), destination(peer.url))
    restarted = GooglechatProvider()
    try:
        done = await restarted.send(sample("failure"), destination(peer.url))
    finally:
        await restarted.close()

    first, second = peer.wait_for_count(2)
    for request in (first, second):
        assert request.query == {"key": KEY, "token": TOKEN, "messageReplyOption": REPLY}
        assert request.json["thread"] == {"threadKey": "deploybell/team-a/web/run-3"}
        assert request.content_type.startswith("application/json")
    assert started.refs["thread"] == done.refs["thread"]
    assert started.refs["name"] != done.refs["name"]
    assert done.detail == f"posted {done.refs['name']}"
    thread = peer.thread(started.refs["thread"])
    assert [m["text"] for m in thread] == [
        "▶ team-a/web started on prod-eu (run 3)",
        "✖ team-a/web failed on prod-eu (run 3)",
    ]
    card = thread[1]["cardsV2"][0]["card"]
    shown = texts(card)
    assert '<font color="#e01e5a"><b>Failed</b></font>' in shown
    assert "pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1" in shown
    buttons = [w["buttonList"] for s in card["sections"] for w in s["widgets"] if "buttonList" in w]
    assert buttons == [
        {
            "buttons": [
                {
                    "text": "Open",
                    "onClick": {"openLink": {"url": "https://dashboard.example/team-a/web"}},
                }
            ]
        }
    ]


async def test_each_run_has_its_own_thread(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    one = await provider.send(sample("start"), destination(peer.url))
    two = await provider.send(dataclasses.replace(sample("start"), run=4), destination(peer.url))
    assert one.refs["thread"] != two.refs["thread"]


async def test_without_threads_every_message_starts_a_thread(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    options = {"threads": False}
    one = await provider.send(sample("start"), destination(peer.url, options))
    two = await provider.send(sample("success"), destination(peer.url, options))
    assert one.refs["thread"] != two.refs["thread"]
    assert all(r.query == {"key": KEY, "token": TOKEN} for r in peer.wait_for_count(2))
    assert all("thread" not in r.json for r in peer.wait_for_count(2))


async def test_values_cannot_format_or_mention(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    pod = PodDiagnosis("web-1", "app", "Error", '<a href="https://evil.example">x</a> <b>', 1, 0)
    message = dataclasses.replace(sample("failure"), cluster="<users/all>", pods=(pod,))
    await provider.send(message, destination(peer.url))
    [request] = peer.wait_for_count(1)
    assert "<users/all>" not in request.json["text"]  # no mention of everyone
    assert "<\u200busers/all>" in request.json["text"]
    shown = texts(request.json["cardsV2"])
    assert '<a href="https://evil.example">' not in shown
    assert '&lt;a href="https://evil.example"&gt;x&lt;/a&gt; &lt;b&gt;' in shown
    assert '<a href="https://evil.example">x</a> <b>' in html.unescape(shown)


async def test_an_oversize_message_fits_chats_limits(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    pods = tuple(PodDiagnosis(f"web-{i}", "app", "Error", "<>" * 3000, 1, 3) for i in range(90))
    huge = dataclasses.replace(sample("failure"), message="y" * 90_000, pods=pods)
    sent = await provider.send(huge, destination(peer.url))
    assert sent.refs["name"]
    shown = texts(peer.messages()[0]["cardsV2"])
    assert "… and 80 more" in shown


@pytest.mark.parametrize(
    ("which", "status", "said"),
    [
        ("key", 400, "API key not valid. Please pass a valid API key."),
        ("token", 401, "Request had invalid authentication credentials."),
    ],
)
async def test_wrong_credentials_are_permanent_and_masked(
    peer: GooglechatPeer, provider: GooglechatProvider, which: str, status: int, said: str
) -> None:
    wrong = "Wr0ngCredential-AbCdEf"
    url = peer.url.replace(KEY if which == "key" else TOKEN, wrong)
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert caught.value.message.startswith(f"googlechat: HTTP {status}")
    assert caught.value.message.endswith(said)
    assert_masked(caught.value, url, wrong, KEY, TOKEN)


async def test_an_unknown_space_is_permanent(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    url = peer.url.replace(peer.space, "AAAAgone")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert "HTTP 404" in caught.value.message
    assert_masked(caught.value, url, KEY, TOKEN)


async def test_resource_exhausted_waits_as_google_asks(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    peer.rate_limit(9)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url))
    assert caught.value.retry_after == 9.0
    assert "Resource has been exhausted" in caught.value.message


async def test_resource_exhausted_without_a_delay_leaves_it_to_the_backoff(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    error = '{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}'
    peer.respond_next(1, 429, body=error)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url))
    assert caught.value.retry_after is None


async def test_a_server_error_is_retried_and_masked(
    peer: GooglechatPeer, provider: GooglechatProvider
) -> None:
    peer.respond_next(1, 503, body=f"unavailable for {peer.url}")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url))
    assert_masked(caught.value, KEY, TOKEN)


def assert_masked(error: DeliveryError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in error.message, error.message
