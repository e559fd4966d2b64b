"""The OpenTelemetry provider against an OTLP/HTTP receiver that decodes the protobuf with
opentelemetry-proto: a run is one trace whose ids come from the run (a restarted operator
continues it; a retry repeats the same spans), the semantic conventions for deployments and VCS,
the auth header masked, OTLP's 429 with Retry-After."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.otel import OtelProvider
from tests.support.peers.otel import OtlpPeer

KEY = "Bearer otlp-unit-ingest-key"


@pytest.fixture
def peer() -> Iterator[OtlpPeer]:
    with OtlpPeer(authorization=KEY) as running:
        yield running


def collector(peer: OtlpPeer, authorization: str = KEY) -> Destination:
    secret = {"url": peer.url, "authorization": authorization}
    return Destination(type="otel", recipient="", options={}, secret=secret)


async def send_from_a_fresh_process(peer: OtlpPeer, event: str, run: int = 3) -> None:
    provider = OtelProvider()
    try:
        await provider.send(dataclasses.replace(sample(event), run=run), collector(peer))
    finally:
        await provider.close()


async def test_start_and_outcome_from_two_processes_are_one_trace(peer: OtlpPeer) -> None:
    await send_from_a_fresh_process(peer, "start")
    await send_from_a_fresh_process(peer, "failure")
    await send_from_a_fresh_process(peer, "failure")  # a retry: the same spans again
    spans = {s.name: s for s in peer.spans()}
    assert list(spans) == ["start", "deploy team-a/web", "Deploying", "Failed"]
    assert len(peer.received) == 7
    assert len(peer.spans()) == 4
    root = spans["deploy team-a/web"]
    assert {s.trace_id for s in spans.values()} == {root.trace_id}
    assert root.parent_id == ""
    assert {spans[n].parent_id for n in ("start", "Deploying", "Failed")} == {root.span_id}
    assert root.end_ns - root.start_ns == 65 * 10**9
    assert (root.status_code, root.status_message) == (2, "CrashLoopBackOff")
    assert root.resource == {
        "service.name": "deploybell",
        "deployment.environment.name": "production",
    }
    assert spans["start"].resource == root.resource
    attributes = root.attributes
    assert attributes["deployment.name"] == "team-a/web"
    assert attributes["deployment.id"] == "team-a/web#3"
    assert attributes["deployment.status"] == "failed"
    assert attributes["vcs.ref.head.revision"] == "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
    assert attributes["vcs.repository.url.full"] == "https://github.com/acme/web"
    assert attributes["k8s.namespace.name"] == "team-a"
    assert attributes["k8s.cluster.name"] == "prod-eu"


async def test_each_run_is_its_own_trace_and_a_success_is_ok(peer: OtlpPeer) -> None:
    await send_from_a_fresh_process(peer, "success", run=3)
    await send_from_a_fresh_process(peer, "success", run=4)
    roots = [s for s in peer.spans() if s.parent_id == ""]
    assert len({r.trace_id for r in roots}) == 2
    assert {r.attributes["deployment.status"] for r in roots} == {"succeeded"}
    assert {r.status_code for r in roots} == {1}
    # The sample success entered Verifying 30 s before it ended: two phases, end to end.
    phases = {
        s.name: (s.start_ns, s.end_ns) for s in peer.spans() if s.trace_id == roots[0].trace_id
    }
    start, end = roots[0].start_ns, roots[0].end_ns
    assert phases["Deploying"] == (start, end - 30 * 10**9)
    assert phases["Verifying"] == (end - 30 * 10**9, end)
    assert phases["Succeeded"] == (end, end)


async def test_a_wrong_key_is_permanent_and_masked(peer: OtlpPeer) -> None:
    provider = OtelProvider()
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await provider.send(sample("start"), collector(peer, "Bearer wrong-otlp-key"))
    finally:
        await provider.close()
    assert "HTTP 401" in caught.value.message
    assert "wrong-otlp-key" not in caught.value.message


async def test_a_throttled_export_waits_the_retry_after(peer: OtlpPeer) -> None:
    peer.respond_next(1, 429, retry_after="9")
    provider = OtelProvider()
    try:
        with pytest.raises(TemporaryDeliveryError) as caught:
            await provider.send(sample("success"), collector(peer))
    finally:
        await provider.close()
    assert caught.value.retry_after == 9
