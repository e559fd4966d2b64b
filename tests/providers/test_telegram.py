"""The Telegram provider against a local Bot API (HTML parse mode, edits, errors, the token)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers._telegram_html import TEXT_LIMIT, render, units
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.telegram import TelegramProvider
from tests.support.peers.telegram import CHANNEL, CHANNEL_ID, GROUP, TOKEN, TelegramPeer, parse_html


@pytest.fixture
def peer() -> Iterator[TelegramPeer]:
    with TelegramPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[TelegramProvider]:
    telegram = TelegramProvider()
    yield telegram
    await telegram.close()


def to(peer: TelegramPeer, chat: str, previous: Any = None, token: str = TOKEN) -> Destination:
    return Destination(
        type="telegram",
        recipient=chat,
        options={},
        secret={"token": token, "apiUrl": peer.base_url},
        previous=previous or {},
    )


async def test_the_outcome_edits_the_start_message(
    peer: TelegramPeer, provider: TelegramProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, str(GROUP)))
    assert started.refs == {"chat": str(GROUP), "message": "1"}
    await provider.send(sample("failure"), to(peer, str(GROUP), started.refs))
    [message] = peer.messages.values()
    assert "team-a/web failed" in message.text
    assert "pod web-7d9f8-x2kqp" in message.text
    assert len(message.edits) == 1


async def test_an_edit_repeated_after_a_lost_answer_is_done(
    peer: TelegramPeer, provider: TelegramProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, str(GROUP)))
    await provider.send(sample("success"), to(peer, str(GROUP), started.refs))
    again = await provider.send(sample("success"), to(peer, str(GROUP), started.refs))
    assert "already shows the outcome" in again.detail
    assert len(peer.messages) == 1


async def test_a_deleted_start_message_gets_the_outcome_as_a_new_one(
    peer: TelegramPeer, provider: TelegramProvider
) -> None:
    started = await provider.send(sample("start"), to(peer, str(GROUP)))
    peer.delete(GROUP, 1)
    sent = await provider.send(sample("cancel"), to(peer, str(GROUP), started.refs))
    assert sent.refs == {"chat": str(GROUP), "message": "2"}
    assert "was canceled" in peer.visible()[0]


async def test_a_channel_by_its_username(peer: TelegramPeer, provider: TelegramProvider) -> None:
    sent = await provider.send(sample("start"), to(peer, CHANNEL))
    assert sent.refs["chat"] == str(CHANNEL_ID)


async def test_errors_are_classified_and_the_token_never_shown(
    peer: TelegramPeer, provider: TelegramProvider
) -> None:
    wrong = "987654321:AAwrong_token_never_to_be_shown"
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), to(peer, str(GROUP), token=wrong))
    assert "HTTP 401" in caught.value.message
    assert "Unauthorized" in caught.value.message
    assert "AAwrong_token" not in caught.value.message
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), to(peer, "-100999"))
    assert "chat not found" in caught.value.message
    peer.respond_next(1, 502, body="Bad Gateway")
    with pytest.raises(TemporaryDeliveryError) as temporary:
        await provider.send(sample("start"), to(peer, str(GROUP)))
    assert TOKEN not in temporary.value.message
    assert TOKEN.split(":")[1] not in str(temporary.value)


async def test_a_malformed_token_is_refused_before_any_request(
    peer: TelegramPeer, provider: TelegramProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), to(peer, str(GROUP), token="no colon here"))
    assert "no colon" not in caught.value.message
    assert peer.received == []


def test_every_value_is_escaped_and_only_telegram_tags_are_used() -> None:
    evil = dataclasses.replace(
        sample("failure"),
        job='<script>&"web"</script>',
        pods=(PodDiagnosis("p<b>", "c&d", "Err<or>", "a & b < c"),),
    )
    text, problem = parse_html(render(evil))
    assert problem == ""
    assert '<script>&"web"</script>' in text
    assert "a & b < c" in text


def test_the_text_fits_4096_utf16_units_with_a_marker() -> None:
    wide = dataclasses.replace(sample("failure"), message="😀" * 5000)
    text, problem = parse_html(render(wide))
    assert problem == ""
    assert units(text) <= TEXT_LIMIT
    assert "…" in text
