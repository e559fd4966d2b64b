"""The Matrix provider against a real homeserver (Synapse, `make synapse`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.matrix import MatrixProvider
from tests.support.peers.matrix import MatrixPeer


@pytest.fixture(scope="module")
def synapse() -> Iterator[MatrixPeer]:
    with MatrixPeer() as running:
        print(f"Synapse answered {running.server.started_in:.1f}s after it was spawned")
        yield running


@pytest.fixture
def peer(synapse: MatrixPeer) -> MatrixPeer:
    """The module's Synapse with a room of its own for this test."""
    room = synapse.bot().call("POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"})
    synapse.room_id = str(room["room_id"])
    synapse.reader().call("POST", f"/_matrix/client/v3/join/{synapse.room_id}", {})
    return synapse


@pytest.fixture
async def provider() -> AsyncIterator[MatrixProvider]:
    matrix = MatrixProvider()
    yield matrix
    await matrix.close()


def to(peer: MatrixPeer, recipient: str = "", previous: Any = None) -> Destination:
    options = {"threads": True, "msgtype": "m.notice"}
    return Destination(
        "matrix", recipient or peer.room_id, options, peer.secret(), previous=previous or {}
    )


async def test_a_message_sent_again_after_a_crash_is_dropped_by_the_homeserver(
    peer: MatrixPeer,
) -> None:
    """The operator died after the send, before recording it: a new process sends the same
    message (same idempotency key) again, and the room still shows it once."""
    events = []
    for _ in range(2):
        fresh = MatrixProvider()
        try:
            events.append((await fresh.send(sample("start"), to(peer))).refs["event"])
        finally:
            await fresh.close()
    assert events[0] == events[1]
    assert [e["event_id"] for e in peer.events()] == [events[0]]


async def test_the_outcome_replaces_the_start_and_is_replied_in_its_thread(
    peer: MatrixPeer, provider: MatrixProvider
) -> None:
    started = await provider.send(sample("start"), to(peer))
    done = await provider.send(sample("failure"), to(peer, previous=started.refs))
    relations = [(e["content"].get("m.relates_to") or {}) for e in peer.events()]
    assert [r.get("rel_type") for r in relations] == [None, "m.replace", "m.thread"]
    assert {r.get("event_id") for r in relations[1:]} == {started.refs["event"]}
    start, reply = peer.shown()
    assert start["event_id"] == done.refs["event"]
    assert start.get("edited")
    assert "failed on prod-eu (run 3)" in start["body"]
    assert "<b>" in start["formatted_body"]
    assert start["msgtype"] == "m.notice"
    assert start["m.mentions"] == {}
    assert "CrashLoopBackOff" in reply["body"]


async def test_an_alias_is_resolved_and_an_unknown_one_is_permanent(
    peer: MatrixPeer, provider: MatrixProvider
) -> None:
    sent = await provider.send(sample("start"), to(peer, peer.alias))
    assert sent.refs["room"].startswith("!")
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), to(peer, "#nowhere:localtest"))
    assert "404" in caught.value.message
    assert "#nowhere:localtest" in caught.value.message


async def test_a_wrong_token_is_permanent_and_masked(
    peer: MatrixPeer, provider: MatrixProvider
) -> None:
    wrong = dataclasses.replace(to(peer), secret={**peer.secret(), "token": "syt_wrong_token"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), wrong)
    assert "M_UNKNOWN_TOKEN" in caught.value.message
    assert "syt_wrong_token" not in caught.value.message


async def test_the_longest_failure_is_accepted_by_the_homeserver_also_as_an_edit(
    peer: MatrixPeer, provider: MatrixProvider
) -> None:
    """Synapse refuses events over 65536 bytes (M_TOO_LARGE): the text is fitted so that even
    the edit, which carries it twice, is under that."""
    pods = tuple(PodDiagnosis(f"p{i}", "c", "Error", "<&>\u00e9" * 900) for i in range(60))
    huge = dataclasses.replace(sample("failure"), message="\u2603" * 50_000, pods=pods)
    started = await provider.send(sample("start"), to(peer))
    await provider.send(huge, to(peer, previous=started.refs))
    [start, _reply] = peer.shown()
    assert start.get("edited")
    assert "…" in start["body"]
