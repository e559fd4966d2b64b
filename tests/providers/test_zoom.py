"""The Zoom Team Chat provider against a local Incoming Webhook connection: the full format,
the verification token as the Authorization header (masked in errors), Zoom's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.zoom import ZoomProvider
from tests.support.peers.contract import texts
from tests.support.peers.zoom import TOKEN, ZoomPeer


@pytest.fixture
def peer() -> Iterator[ZoomPeer]:
    with ZoomPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[ZoomProvider]:
    zoom = ZoomProvider()
    yield zoom
    await zoom.close()


def destination(url: str, token: str = TOKEN) -> Destination:
    secret = {"webhookUrl": url, "verificationToken": token}
    return Destination(type="zoom", recipient="", options={}, secret=secret)


async def test_the_full_format_message_reaches_the_channel(
    peer: ZoomPeer, provider: ZoomProvider
) -> None:
    sent = await provider.send(sample("success"), destination(peer.url))

    (request,) = peer.received
    assert request.query == {"format": "full"}
    assert request.authorization == TOKEN
    assert sent.refs == {"messageId": "msg-000001"}
    (message,) = peer.messages()
    assert message["head"]["text"] == "✔ team-a/web succeeded on prod-eu (run 3)"
    assert message["head"]["style"]["color"] == "#2eb67d"
    assert {"type": "message", "text": "Open", "link": "https://dashboard.example/team-a/web"} in (
        message["body"]
    )
    assert "RolloutComplete after 1m05s" in texts(message)


async def test_a_wrong_token_is_permanent_and_masked(
    peer: ZoomPeer, provider: ZoomProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url, token="leaked-token-9d2"))
    assert "HTTP 401" in caught.value.message
    assert "Invalid authorization token" in caught.value.message
    assert "leaked-token-9d2" not in caught.value.message
    assert peer.messages() == []


async def test_a_token_with_spaces_is_refused_before_sending(
    peer: ZoomPeer, provider: ZoomProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="'verificationToken' must be one word"):
        await provider.send(sample("start"), destination(peer.url, token="two words"))
    assert peer.received == []
