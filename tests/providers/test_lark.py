"""The Lark / Feishu provider against a local custom bot: the signature as the vendor computes
it, the bot's JSON `code` classified (frequency limits retried, the rest permanent and named),
either host's hook path, the hook token masked."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.lark import FREQUENCY_WINDOW_SECONDS, LarkProvider, wait_for
from tests.support.peers.contract import texts
from tests.support.peers.lark import PER_SECOND, SECRET, TOKEN, LarkPeer


@pytest.fixture
def peer() -> Iterator[LarkPeer]:
    with LarkPeer(keywords=("team-a",)) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[LarkProvider]:
    lark = LarkProvider()
    yield lark
    await lark.close()


def destination(url: str, secret: str | None = SECRET) -> Destination:
    keys = {"webhookUrl": url, **({"signingSecret": secret} if secret is not None else {})}
    return Destination(type="lark", recipient="", options={}, secret=keys)


async def test_a_signed_card_reaches_the_group(peer: LarkPeer, provider: LarkProvider) -> None:
    sent = await provider.send(sample("failure"), destination(peer.url))

    (request,) = peer.received
    assert request.code == 0
    assert sent.detail == "sent"
    assert request.json["msg_type"] == "interactive"
    assert request.json["timestamp"].isdigit()
    assert request.json["sign"]
    (card,) = peer.messages()
    assert card["header"]["template"] == "red"
    assert "✖ team-a/web failed on prod-eu (run 3)" in texts(card)
    assert "pod web-7d9f8-x2kqp container app: CrashLoopBackOff" in texts(card)


async def test_a_wrong_signing_secret_is_permanent_and_named(
    peer: LarkPeer, provider: LarkProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer.url, secret="not-the-secret"))
    assert "code 19021" in caught.value.message
    assert "not-the-secret" not in caught.value.message
    assert peer.messages() == []


async def test_without_the_secret_a_signing_bot_refuses(
    peer: LarkPeer, provider: LarkProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="code 19021"):
        await provider.send(sample("start"), destination(peer.url, secret=None))


async def test_a_message_without_the_bots_keyword_is_refused(provider: LarkProvider) -> None:
    with (
        LarkPeer(keywords=("production-only",)) as peer,
        pytest.raises(PermanentDeliveryError, match="code 19024: Key Words Not Found"),
    ):
        await provider.send(sample("start"), destination(peer.url))


async def test_the_bots_frequency_limit_is_retried_after_its_window(
    provider: LarkProvider,
) -> None:
    # The peer's clock stands still: the burst is one instant however loaded the machine is.
    with LarkPeer(keywords=("team-a",), clock=lambda: 1000.0) as peer:
        for _ in range(PER_SECOND):
            await provider.send(sample("start"), destination(peer.url))
        with pytest.raises(TemporaryDeliveryError) as caught:
            await provider.send(sample("success"), destination(peer.url))
    assert "code 11232" in caught.value.message
    assert caught.value.retry_after == FREQUENCY_WINDOW_SECONDS
    assert [r.code for r in peer.received] == [0] * PER_SECOND + [11232]


@pytest.mark.parametrize(("msg", "temporary"), [("too many request", True), ("Bad Request", False)])
async def test_code_9499_is_retried_only_when_it_says_too_many(
    peer: LarkPeer, provider: LarkProvider, msg: str, temporary: bool
) -> None:
    peer.respond_next(1, 200, body=f'{{"code": 9499, "msg": "{msg}", "data": {{}}}}')
    kind = TemporaryDeliveryError if temporary else PermanentDeliveryError
    with pytest.raises(kind) as caught:
        await provider.send(sample("start"), destination(peer.url))
    assert type(caught.value) is kind
    assert f"code 9499: {msg}" in caught.value.message


async def test_an_unknown_hook_is_permanent_and_its_token_masked(
    peer: LarkPeer, provider: LarkProvider
) -> None:
    wrong = peer.url.replace(TOKEN, "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(wrong))
    assert "code 19001" in caught.value.message
    assert "0f9e8d7c-6b5a" not in caught.value.message


@pytest.mark.parametrize("host", ["open.larksuite.com", "open.feishu.cn"])
async def test_a_url_that_is_not_a_bot_hook_is_refused_before_sending(
    provider: LarkProvider, host: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match="/open-apis/bot/v2/hook/<token>"):
        await provider.send(sample("start"), destination(f"https://{host}/open-apis/im/v1/x"))


async def test_one_sender_keeps_a_burst_within_the_bots_limit(provider: LarkProvider) -> None:
    with LarkPeer(keywords=("team-a",)) as peer:  # the bot's real clock and window
        began = time.monotonic()
        for _ in range(PER_SECOND + 2):
            await provider.send(sample("start"), destination(peer.url))
        took = time.monotonic() - began
    assert [r.code for r in peer.received] == [0] * (PER_SECOND + 2)
    assert took >= 1.0


@pytest.mark.parametrize(
    ("done", "now", "wait"),
    [
        ([], 10.0, 0.0),
        ([9.0, 9.5, 9.6, 9.7], 10.0, 0.0),  # four in the last second: a fifth may go
        ([9.5, 9.6, 9.7, 9.8, 9.9], 10.0, 0.55),  # five: until the oldest is 1.05 s old
        ([40.0 + i / 2 for i in range(100)], 90.0, 10.5),  # a hundred in the last minute
    ],
)
def test_the_wait_before_the_next_send(done: list[float], now: float, wait: float) -> None:
    assert wait_for(done, now) == pytest.approx(wait)
