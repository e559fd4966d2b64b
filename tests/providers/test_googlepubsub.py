"""The googlepubsub provider against a local Pub/Sub REST API and token endpoint: the JWT of the
service account key verified with its public half, the token reused, the webhook's CloudEvent
in structured mode, topics by path or in the key's project, and Pub/Sub's refusals."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deploybell.notify.model import sample
from deploybell.notify.providers import googlepubsub, webhook
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from tests.support.peers.googlepubsub import ACCOUNT, MAX_REQUEST, PROJECT, PubsubPeer


@pytest.fixture
def peer() -> Iterator[PubsubPeer]:
    with PubsubPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[googlepubsub.GooglepubsubProvider]:
    pubsub = googlepubsub.GooglepubsubProvider()
    yield pubsub
    await pubsub.close()


def destination(
    peer: PubsubPeer, topic: str = "deploys", key: str | None = None, ordered: bool = False
) -> Destination:
    secret = {"credentials": key or peer.key(), "apiUrl": peer.base_url}
    options = {"orderingKey": ordered}
    return Destination(type="googlepubsub", recipient=topic, options=options, secret=secret)


async def test_a_runs_events_are_published_with_one_verified_token(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider
) -> None:
    start, success = sample("start"), sample("success")
    await provider.send(start, destination(peer, ordered=True))
    sent = await provider.send(success, destination(peer, f"projects/{PROJECT}/topics/deploys"))

    first, second = peer.messages()
    assert json.loads(second.data) == json.loads(webhook.serialize(success))
    assert json.loads(first.data)["type"] == "io.deploybell.deployjob.start"
    assert first.attributes == {"content-type": "application/cloudevents+json; charset=utf-8"}
    assert (first.ordering_key, second.ordering_key) == ("team-a/web", "")
    assert (
        sent.detail
        == f"published to projects/{PROJECT}/topics/deploys as message {second.message_id}"
    )
    (claims,) = peer.grants  # one JWT exchanged, its token reused for the second message
    assert claims["iss"] == ACCOUNT
    assert claims["scope"] == googlepubsub.SCOPE


async def test_a_key_the_service_account_does_not_have_is_refused_without_showing_it(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    forged = json.dumps({**json.loads(peer.key()), "private_key": pem})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, key=forged))

    assert "invalid_grant" in caught.value.message
    assert "Invalid JWT Signature" in caught.value.message
    assert "PRIVATE KEY" not in caught.value.message
    assert peer.messages() == []


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("not json", "is not a JSON key"),
        ('{"type": "authorized_user"}', "is not a service account key"),
    ],
)
async def test_a_secret_without_a_service_account_key_says_so(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider, key: str, said: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match=said):
        await provider.send(sample("start"), destination(peer, key=key))
    assert peer.received == []


async def test_an_unknown_topic_is_permanent_with_pubsubs_error(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, "projects/elsewhere/topics/x1"))
    assert "HTTP 404" in caught.value.message
    assert "topic projects/elsewhere/topics/x1" in caught.value.message


async def test_the_peer_refuses_a_request_over_10_mb_and_a_forged_token(peer: PubsubPeer) -> None:
    """The limits the provider keeps to are those the peer enforces."""
    provider = googlepubsub.GooglepubsubProvider()
    try:
        await provider.send(sample("start"), destination(peer))
        token = await provider._token(json.loads(peer.key()))
    finally:
        await provider.close()
    url = f"{peer.base_url}/v1/projects/{PROJECT}/topics/deploys:publish"
    big = base64.b64encode(b"x" * (MAX_REQUEST * 3 // 4 + 10)).decode()
    async with aiohttp.ClientSession() as session:
        body = {"messages": [{"data": big}]}
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(url, json=body, headers=headers) as response:
            too_big = (response.status, (await response.json())["error"]["status"])
        forged = {"Authorization": "Bearer ya29.forged"}
        async with session.post(url, json={"messages": [{"data": "eA=="}]}, headers=forged) as r:
            unauthenticated = (r.status, (await r.json())["error"]["status"])
    assert too_big == (400, "INVALID_ARGUMENT")
    assert unauthenticated == (401, "UNAUTHENTICATED")


async def test_a_token_endpoint_that_is_down_is_temporary(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider
) -> None:
    key = json.loads(peer.key())
    unreachable = json.dumps({**key, "token_uri": "http://127.0.0.1:9/token"})  # discard port
    with pytest.raises(TemporaryDeliveryError, match="token endpoint failed"):
        await provider.send(sample("start"), destination(peer, key=unreachable))
    assert key["private_key"] not in str(peer.received)


async def test_a_rate_limited_publish_waits_the_time_pubsub_asks(
    peer: PubsubPeer, provider: googlepubsub.GooglepubsubProvider
) -> None:
    peer.rate_limit(5)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer))
    assert caught.value.retry_after == 5
    assert "HTTP 429" in caught.value.message
    await provider.send(sample("start"), destination(peer))
    assert len(peer.messages()) == 1
