"""The Discord provider against a local webhook API: post with ?wait=true, edit in place, threads,
the message-gone fallback, Discord's errors and rate limits, masking."""

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
)
from deploybell.notify.providers.discord import DiscordProvider, escape
from tests.support.peers.discord import (
    CHANNEL_ID,
    THREAD_ID,
    WEBHOOK_TOKEN,
    DiscordPeer,
    readable,
)


@pytest.fixture
def peer() -> Iterator[DiscordPeer]:
    with DiscordPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[DiscordProvider]:
    discord = DiscordProvider()
    yield discord
    await discord.close()


def destination(
    url: str,
    recipient: str = "",
    previous: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Destination:
    return Destination(
        type="discord",
        recipient=recipient,
        options=options or {},
        secret={"webhookUrl": url},
        previous=previous or {},
    )


def title(message: Mapping[str, Any]) -> str:
    return readable(message["embeds"][0]["title"])


async def test_the_start_message_is_edited_in_place_with_the_outcome(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    started = await provider.send(sample("start"), destination(peer.url))
    posted = peer.wait_for_count(1)[0]
    assert (posted.method, posted.query, posted.status) == ("POST", {"wait": "true"}, 200)
    assert started.refs == {"messageId": posted.answer["id"], "channelId": CHANNEL_ID}
    assert posted.json["allowed_mentions"] == {"parse": []}  # nothing in a message pings

    restarted = DiscordProvider()  # the outcome comes from a new operator: refs from the ledger
    try:
        done = await restarted.send(sample("success"), destination(peer.url, previous=started.refs))
    finally:
        await restarted.close()

    edit = peer.wait_for_count(2)[1]
    assert edit.method == "PATCH"
    assert edit.path.endswith(f"/messages/{started.refs['messageId']}")
    assert done.refs == started.refs
    assert done.detail == f"edited message {started.refs['messageId']}"
    [message] = peer.messages()
    assert title(message) == "✔ team-a/web succeeded on prod-eu (run 3)"
    assert message["edited_timestamp"] is not None
    embed = message["embeds"][0]
    assert embed["color"] == 0x2EB67D
    assert embed["url"] == "https://dashboard.example/team-a/web"
    assert {f["name"] for f in embed["fields"]} >= {"Job", "Run", "Cluster", "Duration", "Images"}


async def test_when_the_start_message_is_gone_the_outcome_is_posted_anew(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    started = await provider.send(sample("start"), destination(peer.url))
    peer.delete(started.refs["messageId"])
    done = await provider.send(sample("failure"), destination(peer.url, previous=started.refs))

    edit, post = peer.wait_for_count(3)[1:]
    assert (edit.method, edit.status, edit.answer["code"]) == ("PATCH", 404, 10008)
    assert (post.method, post.status) == ("POST", 200)
    assert done.refs["messageId"] == post.answer["id"] != started.refs["messageId"]
    [message] = peer.messages()
    assert title(message) == "✖ team-a/web failed on prod-eu (run 3)"
    assert "pod web-7d9f8-x2kqp container app: CrashLoopBackOff" in readable(
        message["embeds"][0]["description"]
    )


async def test_a_thread_recipient_posts_and_edits_in_that_thread(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    started = await provider.send(sample("start"), destination(peer.url, THREAD_ID))
    await provider.send(sample("cancel"), destination(peer.url, THREAD_ID, started.refs))

    post, edit = peer.wait_for_count(2)
    assert post.query == {"wait": "true", "thread_id": THREAD_ID}
    assert (edit.method, edit.query) == ("PATCH", {"thread_id": THREAD_ID})
    assert started.refs["channelId"] == THREAD_ID
    assert peer.messages(CHANNEL_ID) == []
    [message] = peer.messages(THREAD_ID)
    assert title(message) == "■ team-a/web was canceled on prod-eu (run 3)"


async def test_an_unknown_thread_is_permanent(peer: DiscordPeer, provider: DiscordProvider) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url, "1999999999999999999"))
    assert caught.value.message == (
        "discord: HTTP 404 Not Found for thread 1999999999999999999: Unknown Channel (code 10003)"
    )


async def test_the_username_option_names_the_post_and_is_not_sent_with_edits(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    options = {"username": "Deploys"}
    started = await provider.send(sample("start"), destination(peer.url, options=options))
    await provider.send(sample("success"), destination(peer.url, "", started.refs, options))
    post, edit = peer.wait_for_count(2)
    assert post.json["username"] == "Deploys"
    assert post.answer["author"]["username"] == "Deploys"
    assert "username" not in edit.json


async def test_a_wrong_token_is_permanent_and_masked(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    url = peer.url.replace(WEBHOOK_TOKEN, "wr0ng-t0ken-value")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert caught.value.message == (
        "discord: HTTP 401 Unauthorized: Invalid Webhook Token (code 50027)"
    )
    assert_masked(caught.value, url, "wr0ng-t0ken-value")


async def test_a_deleted_webhook_is_permanent_not_a_new_post(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    url = peer.url.replace(peer.webhook_id, "1000000000000000001")
    previous = {"messageId": "1300000000000000000", "channelId": CHANNEL_ID}
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("success"), destination(url, previous=previous))
    assert "Unknown Webhook (code 10015)" in caught.value.message
    assert [r.method for r in peer.received] == ["PATCH"]


async def test_a_rate_limit_waits_as_discord_asks(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    peer.rate_limit(2.5)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url))
    assert caught.value.retry_after == 3.0  # the header's whole seconds (the body says 2.5)
    assert "You are being rate limited." in caught.value.message
    assert_masked(caught.value, peer.url, WEBHOOK_TOKEN)


async def test_a_server_error_is_retried(peer: DiscordPeer, provider: DiscordProvider) -> None:
    peer.respond_next(1, 502, body="<html>bad gateway</html>")
    with pytest.raises(TemporaryDeliveryError):
        await provider.send(sample("start"), destination(peer.url))


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.example/api/webhooks/123/abc/slack",  # the Slack-compatible endpoint
        "https://discord.example/api/channels/123",
        "not a url",
    ],
)
async def test_a_url_that_is_not_a_webhook_is_permanent(
    provider: DiscordProvider, url: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(url))
    assert caught.value.message.startswith("discord: Secret key 'webhookUrl' must be")
    assert "abc" not in caught.value.message


async def test_an_oversize_failure_fits_discords_limits(
    peer: DiscordPeer, provider: DiscordProvider
) -> None:
    pods = tuple(PodDiagnosis(f"web-{i}", "app", "Error", "x" * 4000, 1, 3) for i in range(40))
    huge = dataclasses.replace(
        sample("failure"), message="y" * 50_000, pods=pods, images=("i" * 3000,) * 20
    )
    await provider.send(huge, destination(peer.url))
    [post] = peer.wait_for_count(1)
    assert post.status == 200, post.answer
    assert "…" in post.json["embeds"][0]["description"]


def test_markdown_and_mentions_in_values_are_escaped() -> None:
    assert escape("**x** _y_ ~~z~~ `c` ||s|| [a](b) <@123> \\") == (
        "\\*\\*x\\*\\* \\_y\\_ \\~\\~z\\~\\~ \\`c\\` \\|\\|s\\|\\| \\[a\\](b) \\<@123> \\\\"
    )
    assert escape("# head\n- item\n> quote\nteam-a/web") == (
        "\\# head\n\\- item\n\\> quote\nteam-a/web"
    )
    assert readable(escape("**x** [a](b) # y")) == "**x** [a](b) # y"


def assert_masked(error: DeliveryError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in error.message, error.message
