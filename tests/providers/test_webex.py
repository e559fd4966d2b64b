"""The Webex provider against a local Webex Messages API."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.webex import MARKDOWN_BYTES, WebexProvider
from tests.support.peers.webex import WebexPeer


@pytest.fixture
def peer() -> Iterator[WebexPeer]:
    with WebexPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[WebexProvider]:
    webex = WebexProvider()
    yield webex
    await webex.close()


def to(peer: WebexPeer, recipient: str, previous: Any = None) -> Destination:
    return Destination(
        "webex", recipient, {"threads": True}, peer.secret(), previous=previous or {}
    )


async def test_the_outcome_edits_the_start_message_and_replies_in_its_thread(
    peer: WebexPeer, provider: WebexProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, peer.room))
    done = await provider.send(sample("success"), to(peer, peer.room, previous=started.refs))
    start, reply = peer.shown()
    assert start.id == started.refs["message"] == done.refs["message"]
    assert start.updated
    assert "succeeded on prod-eu (run 3)" in start.markdown
    assert reply.parent_id == start.id
    assert reply.room_id == peer.room


async def test_an_email_recipient_gets_a_one_to_one_space_and_its_edit(
    peer: WebexPeer, provider: WebexProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, "ops@example.com"))
    assert started.refs["room"] == peer.direct["ops@example.com"]
    await provider.send(sample("failure"), to(peer, "ops@example.com", previous=started.refs))
    assert [m.room_id for m in peer.shown()] == [started.refs["room"]] * 2
    assert "failed" in peer.shown()[0].markdown


async def test_a_start_message_that_cannot_be_edited_gets_the_outcome_anew(
    peer: WebexPeer, provider: WebexProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, peer.room))
    gone = {**started.refs, "message": "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvZ29uZQ"}
    await provider.send(sample("cancel"), to(peer, peer.room, previous=gone))
    texts = [m.markdown for m in peer.shown()]
    assert len(texts) == 2
    assert "started" in texts[0]
    assert "canceled" in texts[1]


async def test_a_long_failure_in_a_multibyte_script_fits_the_byte_limit(
    peer: WebexPeer, provider: WebexProvider
) -> None:
    pods = tuple(PodDiagnosis(f"pod-{i}", "app", "Error", "失敗しました" * 200) for i in range(30))
    huge = dataclasses.replace(sample("failure"), message="ошибка " * 3000, pods=pods)
    await provider.send(huge, to(peer, peer.room))
    [message] = peer.shown()
    assert len(message.markdown.encode()) <= MARKDOWN_BYTES
    assert "…" in message.markdown


async def test_a_room_the_bot_is_not_in_is_permanent_and_the_token_masked(
    peer: WebexPeer, provider: WebexProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), to(peer, peer.other_room))
    assert "404" in caught.value.message
    assert "Could not find a room" in caught.value.message
    assert peer.token not in caught.value.message
