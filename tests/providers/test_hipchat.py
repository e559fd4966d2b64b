"""The HipChat provider against a real local v2 API (rooms, users, bearer token, errors)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Title,
)
from deploybell.notify.providers.hipchat import HipchatProvider
from tests.support.peers.hipchat import HipchatPeer, HipchatRequest

TOKEN = "hc-token-8f41d2c7a9"


@pytest.fixture
def peer() -> Iterator[HipchatPeer]:
    rooms = {"deploys", "Ops Room", "1234"}
    users = {"@alice", "alice@example.com", "42"}
    with HipchatPeer(token=TOKEN, rooms=rooms, users=users) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[HipchatProvider]:
    hipchat = HipchatProvider()
    yield hipchat
    await hipchat.close()


def destination(
    peer: HipchatPeer,
    recipient: str,
    options: Mapping[str, Any] | None = None,
    token: str = TOKEN,
) -> Destination:
    return Destination(
        type="hipchat",
        recipient=recipient,
        options=options or {},
        secret={"token": token, "url": peer.url},
    )


def last(peer: HipchatPeer) -> HipchatRequest:
    request: HipchatRequest = peer.wait_for(lambda got: got and got[-1], what="an API call")
    return request


async def test_room_notification(peer: HipchatPeer, provider: HipchatProvider) -> None:
    sent = await provider.send(sample("failure"), destination(peer, "#deploys"))

    assert sent.refs == {"room": "deploys"}
    assert sent.detail == "HTTP 204"
    request = last(peer)
    assert (request.kind, request.target, request.status) == ("room", "deploys", 204)
    assert request.path == "/v2/room/deploys/notification"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json["color"] == "red"
    assert request.json["message_format"] == "html"
    assert request.json["notify"] is False
    assert request.message.startswith("<b>✖ team-a/web failed on prod-eu (run 3)</b>")
    assert "container app: CrashLoopBackOff, exit code 1, 5 restarts" in request.message
    assert '<a href="https://dashboard.example/team-a/web">' in request.message


@pytest.mark.parametrize(
    ("event", "colour"),
    [("start", "yellow"), ("success", "green"), ("failure", "red"), ("cancel", "gray")],
)
async def test_colours(
    peer: HipchatPeer, provider: HipchatProvider, event: str, colour: str
) -> None:
    await provider.send(sample(event), destination(peer, "#deploys"))
    assert last(peer).json["color"] == colour


async def test_notify_option_and_room_names_with_spaces(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    await provider.send(sample("success"), destination(peer, "#Ops Room", {"notify": True}))
    request = last(peer)
    assert (request.target, request.path) == ("Ops Room", "/v2/room/Ops%20Room/notification")
    assert request.json["notify"] is True


@pytest.mark.parametrize(
    ("recipient", "target", "path"),
    [
        ("@alice", "@alice", "/v2/user/%40alice/message"),  # a mention name keeps its "@"
        ("@alice@example.com", "alice@example.com", "/v2/user/alice%40example.com/message"),
        ("@42", "42", "/v2/user/42/message"),
    ],
)
async def test_private_message(
    peer: HipchatPeer, provider: HipchatProvider, recipient: str, target: str, path: str
) -> None:
    sent = await provider.send(sample("success"), destination(peer, recipient))

    assert sent.refs == {"user": target}
    request = last(peer)
    assert (request.kind, request.target, request.path, request.status) == (
        "user",
        target,
        path,
        204,
    )
    assert request.json["message_format"] == "text"
    assert request.json["notify"] is False
    assert request.message.splitlines()[:3] == [
        "✔ team-a/web succeeded on prod-eu (run 3)",
        "RolloutComplete after 1m05s: all 2 objects rolled out",
        "https://dashboard.example/team-a/web",
    ]


async def test_html_is_escaped(peer: HipchatPeer, provider: HipchatProvider) -> None:
    message = dataclasses.replace(sample("failure"), message="<script>alert(1)</script>")
    await provider.send(message, destination(peer, "#deploys"))
    text = last(peer).message
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_template_override(peer: HipchatPeer, provider: HipchatProvider) -> None:
    override = Title(title="web is <b>out</b>", text="ask #ops")
    await provider.send(sample("success"), destination(peer, "#deploys"), override)
    assert last(peer).message.startswith("<b>web is &lt;b&gt;out&lt;/b&gt;</b><br>ask #ops")


async def test_bad_token_is_permanent_and_masked(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "#deploys", token="wrong-token"))
    assert caught.value.message == (
        "hipchat: HTTP 401 Unauthorized for room 'deploys': Invalid OAuth session"
    )
    assert last(peer).status == 401


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("#nowhere", "hipchat: HTTP 404 Not Found for room 'nowhere': Room not found"),
        ("@bob", "hipchat: HTTP 404 Not Found for user '@bob': User not found"),
    ],
)
async def test_unknown_room_or_user_is_permanent(
    peer: HipchatPeer, provider: HipchatProvider, recipient: str, expected: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, recipient))
    assert caught.value.message == expected


async def test_forbidden_echoing_the_token_is_masked(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    peer.respond_next(1, 403, body=f"token {TOKEN} may not post to {peer.url}/v2/room/deploys")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "#deploys"))
    assert "HTTP 403" in caught.value.message
    assert TOKEN not in caught.value.message
    assert "may not post" in caught.value.message


async def test_rate_limit_is_temporary_with_retry_after(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    peer.respond_next(1, 429, retry_after="12")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "#deploys"))
    assert caught.value.retry_after == 12.0
    assert "HTTP 429" in caught.value.message
    assert "rate limit" in caught.value.message
    await provider.send(sample("start"), destination(peer, "#deploys"))
    assert last(peer).status == 204


async def test_rate_limit_reset_header_when_no_retry_after(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    reset = int(time.time()) + 60
    peer.respond_next(1, 429, headers={"X-Ratelimit-Reset": str(reset)})
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "#deploys"))
    assert caught.value.retry_after is not None
    assert 30 < caught.value.retry_after <= 60


async def test_server_error_is_temporary(peer: HipchatPeer, provider: HipchatProvider) -> None:
    peer.respond_next(1, 500, body="Internal Server Error")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "#deploys"))
    assert caught.value.retry_after is None
    assert "HTTP 500" in caught.value.message


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ({}, "hipchat: Secret key 'token' is required"),
        ({"token": "  \n"}, "hipchat: Secret key 'token' is required"),
        ({"token": "two words"}, "hipchat: Secret key 'token' must be one word"),
        (
            {"token": TOKEN, "url": "api.hipchat.example"},
            "hipchat: Secret key 'url' must be an absolute http:// or https:// URL",
        ),
    ],
)
async def test_bad_secret_is_permanent_and_names_the_key(
    provider: HipchatProvider, secret: dict[str, str], expected: str
) -> None:
    target = Destination(type="hipchat", recipient="#deploys", options={}, secret=secret)
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), target)
    assert caught.value.message == expected


async def test_token_with_trailing_newline_works(
    peer: HipchatPeer, provider: HipchatProvider
) -> None:
    await provider.send(sample("start"), destination(peer, "#1234", token=TOKEN + "\n"))
    assert last(peer).status == 204
