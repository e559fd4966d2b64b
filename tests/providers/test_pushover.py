"""The Pushover provider against a local Message API: user, group and device recipients,
failure priority with an emergency receipt, the API's 4xx errors, the monthly quota."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.pushover import PushoverProvider
from tests.support.peers.pushover import GROUP, TOKEN, USER, PushoverPeer


@pytest.fixture
def peer() -> Iterator[PushoverPeer]:
    with PushoverPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[PushoverProvider]:
    pushover = PushoverProvider()
    yield pushover
    await pushover.close()


def destination(
    peer: PushoverPeer, recipient: str, token: str = TOKEN, **options: Any
) -> Destination:
    secret = {"token": token, "apiUrl": peer.base_url}
    return Destination(type="pushover", recipient=recipient, options=options, secret=secret)


async def test_a_device_of_a_user_and_a_group_get_the_message(
    peer: PushoverPeer, provider: PushoverProvider
) -> None:
    sent = await provider.send(sample("success"), destination(peer, f"{USER}:tablet"))
    await provider.send(sample("success"), destination(peer, GROUP))

    first, second = peer.delivered()
    assert (first["user"], first["device"]) == (USER, "tablet")
    assert second["user"] == GROUP
    assert "device" not in second
    assert first["title"] == "✔ team-a/web succeeded on prod-eu (run 3)"
    assert first["message"].startswith("RolloutComplete after 1m05s")
    assert first["url"] == "https://dashboard.example/team-a/web"
    assert first["priority"] == 0
    assert first["timestamp"] == 1795773665  # the run's finish, not the send
    assert sent.refs == {"request": first["request"]}
    assert sent.detail.endswith(f"{peer.quota - 1} messages left this month")


async def test_an_emergency_failure_comes_back_with_a_receipt(
    peer: PushoverPeer, provider: PushoverProvider
) -> None:
    sent = await provider.send(sample("failure"), destination(peer, USER, failurePriority=2))

    (message,) = peer.delivered()
    assert (message["priority"], message["retry"], message["expire"]) == (2, 60, 3600)
    assert len(sent.refs["receipt"]) == 30


async def test_an_unknown_user_is_permanent_with_the_apis_error(
    peer: PushoverPeer, provider: PushoverProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "x" * 30))
    assert "HTTP 400" in caught.value.message
    assert "user identifier is not a valid user" in caught.value.message
    assert "user xxxx…" in caught.value.message


async def test_a_wrong_token_is_permanent_and_masked(
    peer: PushoverPeer, provider: PushoverProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, USER, token="b" * 30))
    assert "application token is invalid" in caught.value.message
    assert "b" * 30 not in caught.value.message


async def test_past_the_monthly_quota_it_waits_for_the_renewal(
    provider: PushoverProvider,
) -> None:
    with PushoverPeer(quota=1) as peer:
        await provider.send(sample("start"), destination(peer, USER))
        with pytest.raises(TemporaryDeliveryError) as caught:
            await provider.send(sample("success"), destination(peer, USER))
    assert "HTTP 429" in caught.value.message
    assert "monthly message limit" in caught.value.message
    assert caught.value.retry_after is not None
    assert abs(caught.value.retry_after - (peer.reset - time.time())) < 5
