"""The apprise provider with apprise URLs pointing at local peers: a `json://` receiver and the
Mattermost peer's incoming webhook (`mmost://`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.apprise import AppriseProvider
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from tests.support.peers.apprise import PASSWORD, AppriseJsonPeer
from tests.support.peers.mattermost import HOOK_ID, MattermostPeer


@pytest.fixture
def peer() -> Iterator[AppriseJsonPeer]:
    with AppriseJsonPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[AppriseProvider]:
    apprise = AppriseProvider()
    yield apprise
    await apprise.close()


def urls(*lines: str) -> Destination:
    return Destination(type="apprise", recipient="", options={}, secret={"urls": "\n".join(lines)})


async def test_every_url_gets_the_message(peer: AppriseJsonPeer, provider: AppriseProvider) -> None:
    with MattermostPeer() as mattermost:
        mmost = f"mmost://{mattermost.host}:{mattermost.port}/{HOOK_ID}"
        sent = await provider.send(sample("failure"), urls("# comment", peer.url, mmost))
        [post] = mattermost.visible_posts()
    assert "line 1 (JSON)" in sent.detail
    assert "line 2 (Mattermost)" in sent.detail
    assert PASSWORD not in sent.detail
    [request] = peer.received
    assert request.json["type"] == "failure"
    assert request.json["title"].endswith("team-a/web failed on prod-eu (run 3)")
    assert "pod web-7d9f8-x2kqp" in request.json["message"]
    assert "team-a/web failed" in post.message


async def test_a_refusal_is_permanent_and_no_url_is_shown(
    peer: AppriseJsonPeer, provider: AppriseProvider
) -> None:
    wrong = peer.url.replace(PASSWORD, "wrong-password-xyz")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), urls(wrong))
    text = caught.value.message
    assert "line 1 (JSON)" in text
    assert "error=401" in text
    assert "wrong-password-xyz" not in text
    assert "t0ken-in-the-path" not in text
    assert "json://" not in text or "json://***" in text


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retryable(
    peer: AppriseJsonPeer, provider: AppriseProvider, status: int
) -> None:
    peer.respond_next(1, status)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), urls(peer.url))
    assert f"error={status}" in caught.value.message
    assert PASSWORD not in caught.value.message


async def test_an_unreachable_url_is_retryable(provider: AppriseProvider) -> None:
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), urls("json://user:s3cr3t-pw@127.0.0.1:1/path-token"))
    assert "s3cr3t-pw" not in caught.value.message
    assert "path-token" not in caught.value.message


@pytest.mark.parametrize("line", ["not a url", "nosuchservice://x/y", ""])
async def test_an_unusable_url_is_permanent_and_not_echoed(
    provider: AppriseProvider, line: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), urls(line))
    assert "Secret key 'urls'" in caught.value.message
    if line:
        assert line not in caught.value.message


async def test_apprise_does_not_block_the_event_loop(provider: AppriseProvider) -> None:
    """The receiver runs in the test's own event loop: it can only answer apprise while apprise
    leaves the loop free (it sends from its own threads)."""
    answered: list[bytes] = []

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered.append(await reader.readuntil(b"\r\n\r\n"))
        await asyncio.sleep(0.2)  # the loop must run for this to end
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        sent = await provider.send(sample("start"), urls(f"json://127.0.0.1:{port}/in-loop"))
    assert "delivered to 1 URL(s)" in sent.detail
    assert answered[0].startswith(b"POST /in-loop ")
