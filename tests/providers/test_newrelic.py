"""New Relic against a local NerdGraph: a change-tracking marker per entity at each finished
run (version, commit, outcome, groupId of the run), nothing at start, the EU endpoint, and
NerdGraph's errors (an `errors` list with HTTP 200) as permanent errors."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers import newrelic
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.newrelic import NewrelicProvider
from tests.support.peers.newrelic import ENTITY, NewrelicPeer


@pytest.fixture
def peer() -> Iterator[NewrelicPeer]:
    with NewrelicPeer(entities=frozenset({ENTITY, "OTHERENTITY123"})) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[NewrelicProvider]:
    sender = NewrelicProvider()
    yield sender
    await sender.close()


def destination(peer: NewrelicPeer, entity: str = ENTITY, **options: Any) -> Destination:
    return Destination(
        type="newrelic",
        recipient=entity,
        options={"deploymentType": "ROLLING", "user": "deploybell", **options},
        secret={"apiKey": peer.api_key, "apiUrl": peer.url},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_a_finished_run_is_a_marker_on_each_entity(
    peer: NewrelicPeer, provider: NewrelicProvider
) -> None:
    await provider.send(message("start"), destination(peer))
    assert peer.received == []
    for entity in (ENTITY, "OTHERENTITY123"):
        await provider.send(message("failure"), destination(peer, entity, deploymentType="CANARY"))

    first, second = peer.markers()
    assert (first["entityGuid"], second["entityGuid"]) == (ENTITY, "OTHERENTITY123")
    assert first["version"] == first["commit"] == sample().commit
    assert first["description"].startswith("✖ team-a/web failed on prod-eu (run 3)")
    assert first["deploymentType"] == "CANARY"
    assert first["groupId"] == second["groupId"]
    assert first["changelog"] == "https://github.com/acme/web/pull/42"


def test_the_version_falls_back_to_the_image_tag_then_the_run() -> None:
    assert newrelic.version(message("success", commit="")) == "1.4.3"
    assert newrelic.version(message("success", commit="", images=())) == "run 3"


def test_an_old_finish_time_is_left_out() -> None:
    finished = datetime(2026, 11, 27, 10, 1, 5, tzinfo=UTC)
    fresh = newrelic.deployment(message("success"), ENTITY, {}, finished + timedelta(hours=1))
    stale = newrelic.deployment(message("success"), ENTITY, {}, finished + timedelta(days=2))
    assert fresh["timestamp"] == int(finished.timestamp() * 1000)
    assert "timestamp" not in stale


async def test_nerdgraph_errors_are_permanent_and_name_the_entity(
    peer: NewrelicPeer, provider: NewrelicProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="Entity not found") as refused:
        await provider.send(message("success"), destination(peer, "UNKNOWNENTITY9"))
    assert "entity UNKNOWNENTITY9" in refused.value.message
    assert peer.markers() == []


async def test_a_wrong_key_is_refused_and_masked(
    peer: NewrelicPeer, provider: NewrelicProvider
) -> None:
    bad = dataclasses.replace(
        destination(peer), secret={"apiKey": "NRAK-WRONGKEY42", "apiUrl": peer.url}
    )
    with pytest.raises(PermanentDeliveryError, match="401") as refused:
        await provider.send(message("success"), bad)
    assert "NRAK-WRONGKEY42" not in refused.value.message


def test_the_region_picks_the_endpoint() -> None:
    assert newrelic.endpoint({}) == "https://api.newrelic.com/graphql"
    assert newrelic.endpoint({"region": "eu"}) == "https://api.eu.newrelic.com/graphql"
    with pytest.raises(PermanentDeliveryError, match="US or EU"):
        newrelic.endpoint({"region": "ap"})
