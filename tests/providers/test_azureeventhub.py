"""The azureeventhub provider against a local Event Hubs REST endpoint that verifies each Shared
Access Signature: the webhook's CloudEvent as the event, the partition key, the hub from the
connection string or the options, and the refusals (bad key, unknown hub, throttling)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers import azureeventhub, webhook
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from tests.support.peers.azureeventhub import KEY, EventHubPeer


@pytest.fixture
def peer() -> Iterator[EventHubPeer]:
    with EventHubPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[azureeventhub.AzureeventhubProvider]:
    hubs = azureeventhub.AzureeventhubProvider()
    yield hubs
    await hubs.close()


def destination(peer: EventHubPeer, connection: str = "", **options: Any) -> Destination:
    secret = {"connectionString": connection or peer.connection_string(), "apiUrl": peer.base_url}
    return Destination(type="azureeventhub", recipient="", options=options, secret=secret)


async def test_a_runs_events_reach_the_hub_with_one_partition_key(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider
) -> None:
    await provider.send(sample("start"), destination(peer, partitionKey=True))
    sent = await provider.send(sample("success"), destination(peer, partitionKey=True))

    first, second = peer.events()
    assert json.loads(second.body) == json.loads(webhook.serialize(sample("success")))
    assert json.loads(first.body)["type"] == "io.deploybell.deployjob.start"
    assert (first.partition_key, second.partition_key) == ("team-a/web", "team-a/web")
    assert first.content_type == azureeventhub.CONTENT_TYPE
    assert sent.detail == "sent to event hub deploys"
    assert [r.status for r in peer.received] == [201, 201]  # both signatures verified


async def test_a_namespace_connection_string_needs_the_hub_in_the_options(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider
) -> None:
    namespace_wide = peer.connection_string(hub=None)
    with pytest.raises(PermanentDeliveryError, match="name the event hub"):
        await provider.send(sample("start"), destination(peer, namespace_wide))
    await provider.send(sample("start"), destination(peer, namespace_wide, eventHub="audit"))
    assert len(peer.events("audit")) == 1
    assert peer.events("audit")[0].partition_key == ""


async def test_a_wrong_key_is_refused_and_never_shown(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider
) -> None:
    wrong = KEY[:-4] + "AAA="
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, peer.connection_string(key=wrong)))
    assert "HTTP 401" in caught.value.message
    assert "InvalidSignature" in caught.value.message
    assert wrong not in caught.value.message
    assert "sig=" not in caught.value.message
    assert peer.events() == []


@pytest.mark.parametrize(
    ("connection", "said"),
    [
        ("Endpoint=sb://x.servicebus.windows.net/;EntityPath=deploys", "lacks SharedAccessKeyName"),
        ("nonsense", "lacks Endpoint, SharedAccessKeyName, SharedAccessKey"),
    ],
)
async def test_a_bad_connection_string_says_what_it_lacks(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider, connection: str, said: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match=said):
        await provider.send(sample("start"), destination(peer, connection))
    assert peer.received == []


async def test_an_unknown_hub_is_permanent(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 404.*could not be found"):
        await provider.send(sample("start"), destination(peer, peer.connection_string("gone")))


async def test_server_busy_is_retried_after_the_time_it_asks(
    peer: EventHubPeer, provider: azureeventhub.AzureeventhubProvider
) -> None:
    peer.rate_limit(4)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer))
    assert caught.value.retry_after == 4
    assert "ServerBusy" in caught.value.message
    await provider.send(sample("start"), destination(peer))
    assert len(peer.events()) == 1
