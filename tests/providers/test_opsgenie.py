"""The Opsgenie provider against a local Alert API v2: one alert per DeployJob opened by a failure
(deduplicated by alias across runs and restarts), closed by the next success; starts and cancels
as notes; GenieKey auth; Opsgenie's 422 field errors and its 429 window."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.opsgenie import OpsgenieProvider, alias, calls
from tests.support.peers.opsgenie import API_KEY, OpsgeniePeer


@pytest.fixture
def peer() -> Iterator[OpsgeniePeer]:
    with OpsgeniePeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[OpsgenieProvider]:
    opsgenie = OpsgenieProvider()
    yield opsgenie
    await opsgenie.close()


def team(peer: OpsgeniePeer, key: str = API_KEY) -> Destination:
    return Destination(
        type="opsgenie",
        recipient="",
        options={"priority": "P2"},
        secret={"apiKey": key, "apiUrl": peer.url},
    )


async def test_a_failure_opens_one_alert_per_job_that_the_next_success_closes(
    peer: OpsgeniePeer, provider: OpsgenieProvider
) -> None:
    await provider.send(sample("failure"), team(peer))
    again = dataclasses.replace(sample("failure"), run=4)
    fresh = OpsgenieProvider()  # a restarted operator finds the alert by alias, not by an id
    await fresh.send(again, team(peer))
    await fresh.send(dataclasses.replace(sample("start"), run=5), team(peer))
    [alert] = peer.open_alerts()
    assert (alert.alias, alert.count, alert.priority) == ("deploybell:prod-eu:team-a:web", 2, "P2")
    assert alert.message == "✖ team-a/web failed on prod-eu (run 3)"
    assert "▶ team-a/web started on prod-eu (run 5)" in alert.notes[0]
    await fresh.send(dataclasses.replace(sample("success"), run=5), team(peer))
    await fresh.close()
    assert peer.open_alerts() == []
    assert peer.alerts[alert.alias].status == "closed"
    assert "succeeded" in peer.alerts[alert.alias].notes[-1]
    paths = [c.path for c in peer.received]
    assert paths[-1] == "/v2/alerts/deploybell:prod-eu:team-a:web/close"


async def test_a_success_with_no_open_alert_is_accepted_and_shows_nothing(
    peer: OpsgeniePeer, provider: OpsgenieProvider
) -> None:
    sent = await provider.send(sample("success"), team(peer))
    assert sent.detail == "accepted: close alert deploybell:prod-eu:team-a:web"
    assert peer.alerts == {}
    assert peer.failed == ["close deploybell:prod-eu:team-a:web: Alert does not exist"]


async def test_a_wrong_key_is_permanent_and_masked(
    peer: OpsgeniePeer, provider: OpsgenieProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("failure"), team(peer, key="wrong-genie-key-123"))
    assert "HTTP 401" in caught.value.message
    assert "Could not authenticate" in caught.value.message
    assert "wrong-genie-key-123" not in caught.value.message


async def test_a_throttled_request_waits_opsgenies_window(
    peer: OpsgeniePeer, provider: OpsgenieProvider
) -> None:
    peer.rate_limit(60)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("failure"), team(peer))
    assert caught.value.retry_after == 60


def test_field_limits_hold_for_huge_names() -> None:
    huge = dataclasses.replace(sample("failure"), job="j" * 253, cluster="c" * 600)
    [call] = calls(huge, None, {"priority": "P3"})
    assert len(call.body["message"]) <= 130
    assert len(call.body["alias"]) == 512
    assert call.body["alias"] == alias(huge)
    assert all(len(tag) <= 50 for tag in call.body["tags"])


def test_a_notify_test_message_never_touches_a_jobs_alert() -> None:
    from deploybell.tools.notify_test import labelled_message

    test = labelled_message("team-a", "web", "success", cluster="prod-eu")
    assert alias(test) == "deploybell:prod-eu:team-a:web:notify-test"
