"""The Zulip provider against a local Zulip REST API."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.zulip import ZulipProvider
from tests.support.peers.zulip import API_KEY, ZulipPeer


@pytest.fixture
def peer() -> Iterator[ZulipPeer]:
    with ZulipPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[ZulipProvider]:
    zulip = ZulipProvider()
    yield zulip
    await zulip.close()


def to(
    peer: ZulipPeer, recipient: str = "#deploys", previous: Any = None, **options: Any
) -> Destination:
    return Destination(
        "zulip", recipient, {"threads": True, **options}, peer.secret(), previous=previous or {}
    )


async def test_a_job_s_run_is_one_message_edited_and_a_reply_in_the_job_s_topic(
    peer: ZulipPeer, provider: ZulipProvider
) -> None:
    started = await provider.send(sample("start"), to(peer))
    await provider.send(sample("failure"), to(peer, previous=started.refs))
    start, reply = peer.shown()
    assert start.id == int(started.refs["message"])
    assert start.edited
    assert "failed on prod-eu (run 3)" in start.content
    assert start.recipient == reply.recipient == "stream:deploys"
    assert start.topic == reply.topic == "team-a/web"


async def test_the_topic_option_names_the_topic(peer: ZulipPeer, provider: ZulipProvider) -> None:
    await provider.send(sample("start"), to(peer, "#platform ops", topic="releases"))
    [message] = peer.shown()
    assert (message.recipient, message.topic) == ("stream:platform ops", "releases")


async def test_past_the_edit_limit_the_outcome_is_a_new_message_in_the_topic(
    peer: ZulipPeer, provider: ZulipProvider
) -> None:
    started = await provider.send(sample("start"), to(peer))
    peer.age(int(started.refs["message"]), 601)  # the organization's default limit is 600 s
    done = await provider.send(sample("success"), to(peer, previous=started.refs))
    start, outcome = peer.shown()
    assert "started" in start.content
    assert not start.edited
    assert "succeeded" in outcome.content
    assert outcome.topic == start.topic
    assert done.refs == {"message": str(outcome.id)}


async def test_a_direct_message(peer: ZulipPeer, provider: ZulipProvider) -> None:
    await provider.send(sample("start"), to(peer, "@alice@zulip.local.test"))
    [message] = peer.shown()
    assert message.recipient == "private:alice@zulip.local.test"


async def test_a_rate_limit_without_the_header_waits_for_the_body_s_retry_after(
    peer: ZulipPeer, provider: ZulipProvider
) -> None:
    body = {"result": "error", "msg": "API usage exceeded rate limit", "retry-after": 4.5}
    peer.respond_next(1, 429, body=json.dumps(body), headers={"Content-Type": "application/json"})
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), to(peer))
    assert caught.value.retry_after == 4.5


async def test_a_wrong_api_key_is_permanent_and_masked(
    peer: ZulipPeer, provider: ZulipProvider
) -> None:
    wrong = dataclasses.replace(to(peer), secret={**peer.secret(), "apiKey": "wrong-key-123"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), wrong)
    assert "Invalid API key" in caught.value.message
    assert "wrong-key-123" not in caught.value.message
    assert API_KEY not in caught.value.message
