"""The Rocket.Chat provider against a local Rocket.Chat (REST API and incoming webhooks)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers._answers import Reply
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.rocketchat import RocketchatProvider, rate_limit_wait
from tests.support.peers.rocketchat import RocketchatPeer


@pytest.fixture
def peer() -> Iterator[RocketchatPeer]:
    with RocketchatPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[RocketchatProvider]:
    rocketchat = RocketchatProvider()
    yield rocketchat
    await rocketchat.close()


def rest(peer: RocketchatPeer, recipient: str = "#deploys", previous: Any = None) -> Destination:
    return Destination(
        type="rocketchat",
        recipient=recipient,
        options={"threads": True},
        secret=peer.secret(),
        previous=previous or {},
    )


async def test_the_outcome_edits_the_start_message_and_replies_in_its_thread(
    peer: RocketchatPeer, provider: RocketchatProvider
) -> None:
    started = await provider.send(sample("start"), rest(peer))
    assert started.refs["room"] == peer.room_id("deploys")
    restarted = RocketchatProvider()  # the refs come back from the ledger
    try:
        done = await restarted.send(sample("failure"), rest(peer, previous=started.refs))
    finally:
        await restarted.close()
    start, reply = peer.shown()
    assert start.id == started.refs["message"] == done.refs["message"]
    assert start.edited
    assert "failed on prod-eu (run 3)" in start.msg
    assert reply.tmid == start.id
    assert "CrashLoopBackOff" in reply.msg
    assert not any("started" in m.msg for m in peer.shown())


async def test_a_start_message_that_is_gone_gets_the_outcome_as_a_new_message(
    peer: RocketchatPeer, provider: RocketchatProvider
) -> None:
    started = await provider.send(sample("start"), rest(peer))
    with peer._lock:
        del peer.messages[started.refs["message"]]
    done = await provider.send(sample("success"), rest(peer, previous=started.refs))
    [outcome] = peer.shown()
    assert outcome.id == done.refs["message"]
    assert "succeeded" in outcome.msg


async def test_an_incoming_webhook_posts_to_its_channel_or_the_override(
    peer: RocketchatPeer, provider: RocketchatProvider
) -> None:
    for recipient in ("", "#deploys"):
        hook = Destination(
            "rocketchat", recipient, {"alias": "deploybell"}, {"webhookUrl": peer.webhook_url}
        )
        sent = await provider.send(sample("start"), hook)
        assert sent.refs == {}
    rooms = [peer.rooms[m.rid]["name"] for m in peer.shown()]
    assert rooms == ["general", "deploys"]
    assert {m.alias for m in peer.shown()} == {"deploybell"}


async def test_a_wrong_token_is_permanent_and_masked(
    peer: RocketchatPeer, provider: RocketchatProvider
) -> None:
    wrong = dataclasses.replace(rest(peer), secret={**peer.secret(), "token": "not-the-token"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), wrong)
    assert "401" in caught.value.message
    assert "not-the-token" not in caught.value.message


async def test_a_value_mentions_nobody(peer: RocketchatPeer, provider: RocketchatProvider) -> None:
    shouting = dataclasses.replace(sample("failure"), message="ping @all and @here *now*")
    await provider.send(shouting, rest(peer))
    [message] = peer.shown()
    assert "@all" not in message.msg
    assert "@here" not in message.msg
    assert "@\u2060all" in message.msg
    assert r"\*now\*" in message.msg


def test_the_rate_limiter_wait_comes_from_the_reset_header_or_the_error_text() -> None:
    body = json.dumps({"success": False, "error": "… You must wait 12 seconds before …"})
    by_text = Reply(429, "Too Many Requests", {}, body)
    by_header = Reply(429, "Too Many Requests", {"X-RateLimit-Reset": "1000009000"}, body)
    assert rate_limit_wait(by_text) == 12.0
    assert rate_limit_wait(by_header, now=1_000_000.0) == pytest.approx(9.0)
    assert rate_limit_wait(Reply(400, "Bad Request", {}, body)) is None
