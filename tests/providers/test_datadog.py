"""The Datadog provider against a local DORA Metrics API: nothing at start, one deployment event
per finished run, a failed run marked as a change failure (with an application key), keys
masked, Datadog's errors and 429s; and the site → API host rule."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.datadog import DatadogProvider, api_root
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.datadog import DatadogPeer

API_KEY = "dd-unit-api-key-6b8d0f2a"
APP_KEY = "dd-unit-app-key-1a3c5e7g"
SECOND = 1_000_000_000


@pytest.fixture
def peer() -> Iterator[DatadogPeer]:
    with DatadogPeer(api_key=API_KEY, app_key=APP_KEY) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[DatadogProvider]:
    datadog = DatadogProvider()
    yield datadog
    await datadog.close()


def destination(peer: DatadogPeer, app_key: str = APP_KEY, **options: Any) -> Destination:
    secret = {"apiKey": API_KEY, "apiUrl": peer.url}
    if app_key:
        secret["appKey"] = app_key
    return Destination(type="datadog", recipient="", options=options, secret=secret)


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_nothing_is_sent_at_start(peer: DatadogPeer, provider: DatadogProvider) -> None:
    sent = await provider.send(message("start"), destination(peer))
    assert sent.refs == {}
    assert "nothing to send at start" in sent.detail
    assert peer.received == []


async def test_a_finished_run_is_one_deployment_event(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    sent = await provider.send(message("success"), destination(peer, team="platform"))
    [event] = peer.events()
    assert sent.refs == {"deployment": event["id"]}
    assert event["service"] == "web"  # the DeployJob's name by default
    assert event["env"] == "production"
    assert event["finished_at"] - event["started_at"] == 65 * SECOND
    assert event["git"] == {
        "commit_sha": "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
        "repository_url": "https://github.com/acme/web",
    }
    assert event["version"] == event["git"]["commit_sha"]
    assert event["team"] == "platform"
    assert "deploybell.outcome:succeeded" in event["custom_tags"]
    assert "deploybell.job:team-a/web" in event["custom_tags"]
    assert event["change_failure"] is None
    assert [(c.method, c.path) for c in peer.received] == [
        ("GET", f"/api/v2/dora/deployments/{event['id']}"),  # is it there already? (404)
        ("POST", "/api/v2/dora/deployment"),
    ]


async def test_a_failed_run_is_a_change_failure_and_a_retry_sends_no_second_event(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    first = await provider.send(message("failure"), destination(peer))
    again = await provider.send(message("failure"), destination(peer))  # e.g. after a crash
    [event] = peer.events()
    assert first.refs == again.refs == {"deployment": event["id"]}
    assert event["change_failure"] is True
    assert "marked as a change failure" in first.detail
    assert [c.method for c in peer.received] == ["GET", "POST", "PATCH", "GET", "PATCH"]


async def test_without_an_application_key_the_failure_is_a_tag(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    sent = await provider.send(message("failure"), destination(peer, app_key=""))
    [event] = peer.events()
    assert event["change_failure"] is None
    assert "deploybell.outcome:failed" in event["custom_tags"]
    assert "the Secret has no appKey" in sent.detail


async def test_runs_are_told_apart_and_a_commit_is_optional(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    await provider.send(message("success", run=1), destination(peer))
    await provider.send(message("cancel", run=2, commit="", repository=""), destination(peer))
    first, second = peer.events()
    assert first["id"] != second["id"]
    assert "git" not in second
    assert second["version"] == "1.4.3"  # the image's tag without a commit
    assert "deploybell.outcome:canceled" in second["custom_tags"]


async def test_a_wrong_key_is_permanent_and_masked(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    target = destination(peer, app_key="")
    target = dataclasses.replace(target, secret={**target.secret, "apiKey": "dd-wrong-key-99"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(message("success"), target)
    assert "HTTP 403" in caught.value.message
    assert "dd-wrong-key-99" not in caught.value.message


async def test_an_application_key_without_the_scope_is_permanent(
    provider: DatadogProvider,
) -> None:
    with (
        DatadogPeer(
            api_key=API_KEY, app_key=APP_KEY, app_scopes=frozenset({"dora_metrics_read"})
        ) as limited,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        await provider.send(message("failure"), destination(limited))
    assert "dora_metrics_write" in caught.value.message


async def test_rate_limits_wait_for_the_reset_and_server_errors_are_temporary(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    peer.rate_limit(11)
    with pytest.raises(TemporaryDeliveryError) as limited:
        await provider.send(message("success"), destination(peer, app_key=""))
    assert limited.value.retry_after == 11
    peer.respond_next(1, 503, body=f'{{"errors": ["overloaded {API_KEY}"]}}')
    with pytest.raises(TemporaryDeliveryError) as down:
        await provider.send(message("success"), destination(peer, app_key=""))
    assert API_KEY not in down.value.message


@pytest.mark.parametrize(
    ("secret", "host"),
    [
        ({}, "api.datadoghq.com"),
        ({"site": "datadoghq.eu"}, "api.datadoghq.eu"),
        ({"site": "app.datadoghq.eu"}, "api.datadoghq.eu"),
        ({"site": "US5.datadoghq.com"}, "api.us5.datadoghq.com"),
    ],
)
def test_the_site_names_the_api_host(secret: dict[str, str], host: str) -> None:
    target = Destination("datadog", "", {}, {"apiKey": API_KEY, **secret})
    assert api_root(target.secret).host == host


def test_a_site_that_is_not_a_host_is_refused() -> None:
    target = Destination("datadog", "", {}, {"apiKey": API_KEY, "site": "evil/path?x"})
    with pytest.raises(PermanentDeliveryError) as caught:
        api_root(target.secret)
    assert "'site' must be a Datadog site" in caught.value.message


async def test_notify_test_validates_the_key_and_sends_no_event(
    peer: DatadogPeer, provider: DatadogProvider
) -> None:
    test = labelled_message("team-a", "dora", "success")
    sent = await provider.send(test, destination(peer))
    assert "the API key is valid" in sent.detail
    target = destination(peer)
    target = dataclasses.replace(target, secret={**target.secret, "apiKey": "dd-wrong-key-77"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(test, target)
    assert "dd-wrong-key-77" not in caught.value.message
    assert peer.events() == []
