"""The incident.io provider against a local HTTP alert source: a failure fires the job's alert, a
repeated failure updates it, the next success resolves it; starts and cancels send nothing;
Bearer auth masked; incident.io's 429 with Retry-After."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.incidentio import IncidentioProvider
from tests.support.peers.incidentio import TOKEN, IncidentioPeer


@pytest.fixture
def peer() -> Iterator[IncidentioPeer]:
    with IncidentioPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[IncidentioProvider]:
    incidentio = IncidentioProvider()
    yield incidentio
    await incidentio.close()


def source(peer: IncidentioPeer, token: str = TOKEN) -> Destination:
    return Destination(
        type="incidentio",
        recipient="",
        options={"metadata": {"team": "platform"}},
        secret={"url": peer.url, "token": token},
    )


async def test_fire_update_resolve_and_nothing_for_starts_or_cancels(
    peer: IncidentioPeer, provider: IncidentioProvider
) -> None:
    for event in ("start", "cancel"):
        sent = await provider.send(sample(event), source(peer))
        assert "nothing to send" in sent.detail
    assert peer.received == []
    await provider.send(sample("failure"), source(peer))
    await provider.send(dataclasses.replace(sample("failure"), run=4), source(peer))
    [alert] = peer.firing()
    assert alert.key == "deploybell:prod-eu:team-a:web"
    assert alert.title == "✖ team-a/web failed on prod-eu (run 4)"
    assert alert.metadata["team"] == "platform"
    assert alert.metadata["deployjob"] == "web"
    await provider.send(dataclasses.replace(sample("success"), run=5), source(peer))
    assert peer.firing() == []
    assert peer.alerts[alert.key].status == "resolved"


async def test_a_wrong_token_is_permanent_and_masked(
    peer: IncidentioPeer, provider: IncidentioProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("failure"), source(peer, token="inc-wrong-token-42"))
    assert "HTTP 401" in caught.value.message
    assert "inc-wrong-token-42" not in caught.value.message
    assert "01JDEPLOYBELL" not in caught.value.message  # the source URL is masked too
