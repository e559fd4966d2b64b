"""The PagerDuty provider against a local Events API v2 (change events, alerts, errors)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers._pagerduty_events import dedup_key
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.pagerduty import RATE_LIMIT_DELAY, PagerdutyProvider
from tests.support.peers.pagerduty import ROUTING_KEY, PagerdutyPeer


@pytest.fixture
def peer() -> Iterator[PagerdutyPeer]:
    with PagerdutyPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[PagerdutyProvider]:
    pagerduty = PagerdutyProvider()
    yield pagerduty
    await pagerduty.close()


def service(peer: PagerdutyPeer, key: str = ROUTING_KEY, **options: Any) -> Destination:
    return Destination(
        type="pagerduty",
        recipient="",
        options={"severity": "error", **options},
        secret={"routingKey": key, "apiUrl": peer.base_url},
    )


async def test_every_event_is_a_change_event_and_no_alert_by_default(
    peer: PagerdutyPeer, provider: PagerdutyProvider
) -> None:
    for event in ("start", "failure"):
        await provider.send(sample(event), service(peer))
    assert [c["payload"]["summary"][:30] for c in peer.changes] == [
        "▶ team-a/web started on prod-e",
        "✖ team-a/web failed on prod-eu",
    ]
    assert peer.changes[1]["payload"]["custom_details"]["Failing pods"]
    assert peer.alerts == {}


async def test_a_failure_triggers_an_alert_that_the_next_success_resolves(
    peer: PagerdutyPeer, provider: PagerdutyProvider
) -> None:
    failed = await provider.send(sample("failure"), service(peer, alertOnFailure=True))
    assert failed.refs == {"dedup_key": "team-a/web"}
    again = dataclasses.replace(sample("failure"), run=4)
    await provider.send(again, service(peer, alertOnFailure=True, severity="critical"))
    alert = peer.alert("team-a/web")
    assert alert is not None
    assert (alert.status, alert.triggers, alert.severity) == ("triggered", 2, "error")
    await provider.send(sample("success"), service(peer, alertOnFailure=True))
    assert alert.status == "resolved"
    assert len(peer.changes) == 3


async def test_an_invalid_event_is_permanent_with_pagerdutys_errors(
    peer: PagerdutyPeer, provider: PagerdutyProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), service(peer, key="short-key"))
    assert "HTTP 400" in caught.value.message
    assert "'routing_key' must be 32 characters" in caught.value.message
    assert "short-key" not in caught.value.message


async def test_rate_limits_and_server_errors_are_retried(
    peer: PagerdutyPeer, provider: PagerdutyProvider
) -> None:
    peer.rate_limit_next(7)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), service(peer))
    assert caught.value.retry_after == RATE_LIMIT_DELAY  # PagerDuty names no wait
    peer.respond_next(1, 429, retry_after="3")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), service(peer))
    assert caught.value.retry_after == 3  # but one that does is honoured
    peer.respond_next(1, 500)
    with pytest.raises(TemporaryDeliveryError):
        await provider.send(sample("start"), service(peer))


def test_a_long_dedup_key_is_cut_but_stays_distinct() -> None:
    long_job = dataclasses.replace(sample("failure"), job="j" * 253, namespace="n" * 63)
    other = dataclasses.replace(long_job, job="j" * 252 + "k")
    assert len(dedup_key(long_job)) == 255
    assert dedup_key(long_job) != dedup_key(other)
    assert dedup_key(sample("failure")) == "team-a/web"
