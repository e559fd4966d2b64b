"""The Grafana provider against a local Grafana API: one region annotation per run, patched at
the outcome, found again after a crash, made again when deleted, Grafana's errors and 429s."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Title,
)
from deploybell.notify.providers.grafana import GrafanaProvider
from deploybell.tools.notify_test import labelled_message
from tests.support.peers.grafana import PERMISSIONS, GrafanaPeer

TOKEN = "glsa_unit_token_5f7a9c1e"
START_MS = 1795773600000  # 2026-11-27T10:00:00Z, the sample's start
END_MS = 1795773665000


@pytest.fixture
def peer() -> Iterator[GrafanaPeer]:
    with GrafanaPeer(token=TOKEN) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[GrafanaProvider]:
    grafana = GrafanaProvider()
    yield grafana
    await grafana.close()


def destination(
    peer: GrafanaPeer, previous: Mapping[str, str] | None = None, token: str = TOKEN, **options: Any
) -> Destination:
    return Destination(
        type="grafana",
        recipient="",
        options=options,
        secret={"token": token, "url": peer.url},
        previous=previous or {},
    )


def message(event: str, run: int = 3, **changes: Any) -> Message:
    return dataclasses.replace(sample(event), run=run, **changes)


async def test_a_run_is_one_region_from_its_start_to_its_end(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    started = await provider.send(message("start"), destination(peer, dashboardUID="deploys"))
    [point] = peer.annotations()
    assert (point["time"], point["timeEnd"]) == (START_MS, START_MS)
    assert point["tags"] == ["deploybell", "team-a/web", "production"]
    assert point["dashboardUID"] == "deploys"

    ended = await provider.send(message("failure"), destination(peer, started.refs))
    [region] = peer.annotations()
    assert started.refs == ended.refs == {"annotation": str(region["id"])}
    assert (region["time"], region["timeEnd"], region["patches"]) == (START_MS, END_MS, 1)
    assert region["tags"] == ["deploybell", "team-a/web", "production", "failed"]
    lines = region["text"].splitlines()
    assert lines[0] == "✖ team-a/web failed on prod-eu (run 3)"
    assert "Run: 3" in lines
    assert any("container app: CrashLoopBackOff" in line for line in lines)


async def test_a_start_sent_again_after_a_crash_finds_its_annotation(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    first = await provider.send(message("start"), destination(peer))
    again = await provider.send(message("start"), destination(peer))
    # Another run of the job that started within the same second is another annotation.
    other = await provider.send(message("start", run=4), destination(peer))
    assert first.refs == again.refs != other.refs
    assert len(peer.annotations()) == 2


async def test_the_run_is_found_whatever_the_template_says(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    override = Title(title="deploy", text="something happened")
    first = await provider.send(message("start"), destination(peer), override)
    ended = await provider.send(message("success"), destination(peer), override)
    assert first.refs == ended.refs
    [annotation] = peer.annotations()
    assert annotation["text"].startswith("deploy\nsomething happened\n")
    assert annotation["tags"][-1] == "succeeded"


async def test_an_annotation_deleted_since_the_start_is_made_again(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    started = await provider.send(message("start"), destination(peer))
    peer.delete(int(started.refs["annotation"]))
    ended = await provider.send(message("cancel"), destination(peer, started.refs))
    [region] = peer.annotations()
    assert ended.refs == {"annotation": str(region["id"])} != started.refs
    assert (region["time"], region["timeEnd"]) == (START_MS, END_MS)
    assert region["tags"][-1] == "canceled"


async def test_a_token_without_write_permission_is_permanent(provider: GrafanaProvider) -> None:
    permissions = PERMISSIONS - {"annotations:write"}
    with GrafanaPeer(token=TOKEN, permissions=permissions) as limited:
        started = await provider.send(message("start"), destination(limited))
        with pytest.raises(PermanentDeliveryError) as caught:
            await provider.send(message("success"), destination(limited, started.refs))
    assert "HTTP 403" in caught.value.message
    assert "annotations:write" in caught.value.message


async def test_an_unknown_dashboard_and_a_wrong_token_are_permanent(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    with pytest.raises(PermanentDeliveryError) as unknown:
        await provider.send(message("start"), destination(peer, dashboardUID="nope"))
    assert "Dashboard not found" in unknown.value.message
    with pytest.raises(PermanentDeliveryError) as wrong:
        await provider.send(message("start"), destination(peer, token="glsa_wrong_123"))
    assert "HTTP 401" in wrong.value.message
    assert "glsa_wrong_123" not in wrong.value.message


async def test_rate_limits_and_server_errors_are_temporary(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    peer.rate_limit(9)
    with pytest.raises(TemporaryDeliveryError) as limited:
        await provider.send(message("start"), destination(peer))
    assert limited.value.retry_after == 9
    peer.respond_next(1, 500, body=f'{{"message": "db error near {TOKEN}"}}')
    with pytest.raises(TemporaryDeliveryError) as down:
        await provider.send(message("start"), destination(peer))
    assert TOKEN not in down.value.message


async def test_notify_test_checks_the_token_and_adds_nothing(
    peer: GrafanaPeer, provider: GrafanaProvider
) -> None:
    test = labelled_message("team-a", "annotations", "success")
    sent = await provider.send(test, destination(peer))
    assert "the token can read annotations" in sent.detail
    with pytest.raises(PermanentDeliveryError):
        await provider.send(test, destination(peer, token="glsa_wrong_456"))
    assert peer.annotations() == []
