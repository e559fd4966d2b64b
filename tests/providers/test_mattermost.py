"""The Mattermost provider against a local Mattermost (REST API v4 and incoming webhooks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify import providers
from deploybell.notify.model import sample
from deploybell.notify.providers._mattermost_posts import md
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.mattermost import MattermostProvider
from tests.support.peers.mattermost import TOKEN, MattermostPeer, readable


@pytest.fixture
def peer() -> Iterator[MattermostPeer]:
    with MattermostPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[MattermostProvider]:
    mattermost = MattermostProvider()
    yield mattermost
    await mattermost.close()


def rest(
    peer: MattermostPeer, recipient: str, previous: Any = None, token: str = TOKEN
) -> Destination:
    return Destination(
        type="mattermost",
        recipient=recipient,
        options={"threads": True},
        secret={"token": token, "url": peer.url},
        previous=previous or {},
    )


def hook(peer: MattermostPeer, recipient: str = "", **options: Any) -> Destination:
    return Destination(
        type="mattermost",
        recipient=recipient,
        options=options,
        secret={"webhookUrl": peer.webhook_url},
    )


async def test_the_outcome_updates_the_start_post_and_replies_in_its_thread(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    started = await provider.send(sample("start"), rest(peer, "#platform/deploys"))
    assert started.refs["channel"] == peer.channel_id("deploys")
    failed = await provider.send(sample("failure"), rest(peer, "#platform/deploys", started.refs))
    root = started.refs["post"]
    assert failed.refs == {**started.refs, "reply": failed.refs["reply"]}
    [post] = [p for p in peer.visible_posts() if not p.root_id]
    assert post.id == root
    assert "team-a/web failed" in post.visible()
    assert "pod web-7d9f8-x2kqp container app" in post.visible()
    [reply] = peer.replies(root)
    assert "team-a/web failed" in readable(reply.message)


async def test_a_deleted_start_post_gets_the_outcome_as_a_new_post(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    started = await provider.send(sample("start"), rest(peer, "#platform/deploys"))
    peer.delete(started.refs["post"])
    sent = await provider.send(sample("success"), rest(peer, "#platform/deploys", started.refs))
    assert sent.refs["post"] != started.refs["post"]
    [post] = peer.visible_posts()
    assert "succeeded" in post.visible()


async def test_channel_ids_and_direct_messages(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    by_id = await provider.send(sample("start"), rest(peer, f"#{peer.channel_id('deploys')}"))
    assert by_id.refs["channel"] == peer.channel_id("deploys")
    direct = await provider.send(sample("start"), rest(peer, "@alice"))
    assert peer.channels[direct.refs["channel"]]["type"] == "D"


@pytest.mark.parametrize(
    ("recipient", "said"),
    [
        ("#platform/nowhere", "HTTP 404"),
        ("#platform/private", "HTTP 403"),
        ("@nobody", "HTTP 404"),
        ("#deploys", "needs a recipient '#team/channel'"),
        ("", "needs at least one recipient"),
    ],
)
async def test_unusable_recipients_are_permanent(
    peer: MattermostPeer, provider: MattermostProvider, recipient: str, said: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), rest(peer, recipient))
    assert said in caught.value.message


async def test_a_wrong_token_is_permanent_and_never_shown(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), rest(peer, "@alice", token="wrong-token-1234"))
    assert "HTTP 401" in caught.value.message
    assert "wrong-token-1234" not in caught.value.message


async def test_server_errors_are_temporary_and_rate_limits_wait_as_asked(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    peer.respond_next(1, 503, body="down for maintenance")
    with pytest.raises(TemporaryDeliveryError):
        await provider.send(sample("start"), rest(peer, "#platform/deploys"))
    peer.respond_next(1, 429, body="limit exceeded", headers={"X-Ratelimit-Reset": "12"})
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), rest(peer, "#platform/deploys"))
    assert caught.value.retry_after == 12  # no Retry-After: X-Ratelimit-Reset says how long


async def test_the_incoming_webhook_overrides_channel_username_and_icon(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    await provider.send(sample("start"), hook(peer))
    await provider.send(
        sample("failure"),
        hook(peer, "#platform/deploys", username="deploys", iconUrl="https://x.example/i.png"),
    )
    await provider.send(sample("success"), hook(peer, "@alice"))
    first, second, third = peer.visible_posts()
    assert first.channel_id == peer.hook_channel
    assert second.channel_id == peer.channel_id("deploys")
    assert second.overrides == {
        "channel": "deploys",
        "username": "deploys",
        "icon_url": "https://x.example/i.png",
    }
    assert third.channel_id == peer.users["alice"]["id"]
    assert all(p.via == "webhook" for p in (first, second, third))


async def test_a_wrong_webhook_is_permanent_and_its_url_masked(
    peer: MattermostPeer, provider: MattermostProvider
) -> None:
    secret_path = "/hooks/n0tth3h00kid0123456789abcd"
    destination = Destination("mattermost", "", {}, {"webhookUrl": peer.url + secret_path})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination)
    assert "Invalid webhook" in caught.value.message
    assert "n0tth3h00kid" not in caught.value.message


def test_values_cannot_format_the_post_or_mention_everyone() -> None:
    assert md("**bold** @channel [x](y) `c`") == (
        "\\*\\*bold\\*\\* @\u2060channel \\[x\\](y) \\`c\\`"
    )
    assert readable(md("a_b @all")) == "a_b @all"


def test_the_rest_api_without_recipients_is_not_ready() -> None:
    rules = providers.TYPES["mattermost"].rules
    assert rules.secret_problem("mm", ["token", "url"], ()) == (
        "Secret mm has token and url: at least one recipient ('#team/channel', '#<channel id>', "
        "'#channel' (webhook) or '@user') is required with them"
    )
    assert rules.secret_problem("mm", ["token", "url"], ("@alice",)) is None
    assert rules.secret_problem("mm", ["webhookUrl"], ()) is None
