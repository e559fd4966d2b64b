"""The NATS provider against a real nats-server built from its Go module: each message is the
webhook type's CloudEvent, delivered once to a subscriber, its id in `Nats-Msg-Id`; user/password
and token auth (a refused login is permanent and masked); with JetStream a repeated send (an
outbox retry after a crash) is stored once, and a subject no stream captures is an error.

"Once": core NATS gives each connected subscriber a published message at most once; deploybell
sends each message until the ledger records it, so the only repeat is a resend with the same
CloudEvent id. Below, four events reach the subscriber exactly once each; the JetStream test
sends one event twice and the stream keeps it once."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import Iterator

import nats
import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers import webhook
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from deploybell.notify.providers.nats import NatsProvider
from tests.support.peers.nats import NatsServer, NatsSubscriber

USER = {"user": "deploybell", "password": "nats-unit-password"}


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer(**USER) as running:
        yield running


def subject(url: str, recipient: str = "deploys.team-a", jetstream: bool = False, **secret: str):
    return Destination(
        type="nats",
        recipient=recipient,
        options={"jetstream": jetstream},
        secret={"url": url, **secret},
    )


def login(url: str, recipient: str = "deploys.team-a", jetstream: bool = False) -> Destination:
    return subject(url, recipient, jetstream, username="deploybell", password="nats-unit-password")


async def test_each_cloudevent_reaches_a_subscriber_once(server: NatsServer) -> None:
    provider = NatsProvider()
    with NatsSubscriber(server.url, "deploys.>", **USER) as heard:
        for run, event in ((1, "start"), (1, "success"), (2, "start"), (2, "failure")):
            message = dataclasses.replace(
                sample(event), run=run, idempotency_key=f"k/{run}/{event}"
            )
            await provider.send(message, login(server.url))
        got = heard.wait_for(lambda got: got if len(got) >= 4 else None)
        await asyncio.sleep(0.3)  # anything more would have arrived with them
        got = heard.heard
    events = [h.event() for h in got]
    assert [e["id"] for e in events] == ["k/1/start", "k/1/success", "k/2/start", "k/2/failure"]
    assert max(collections.Counter(e["id"] for e in events).values()) == 1
    assert [h.headers["Nats-Msg-Id"] for h in got] == [e["id"] for e in events]
    assert {h.subject for h in got} == {"deploys.team-a"}
    expected = webhook.event(
        dataclasses.replace(sample("failure"), run=2, idempotency_key="k/2/failure")
    )
    assert events[-1] == json.loads(json.dumps(expected))  # the webhook type's CloudEvent


async def test_a_refused_login_is_permanent_and_masked(server: NatsServer) -> None:
    destination = subject(server.url, username="deploybell", password="wrong-nats-pass")
    with pytest.raises(PermanentDeliveryError) as caught:
        await NatsProvider().send(sample("start"), destination)
    assert "wrong-nats-pass" not in caught.value.message
    assert "uthorization" in caught.value.message, caught.value.message


async def test_token_auth() -> None:
    token = "nats-unit-token-7"
    with (
        NatsServer(token=token) as guarded,
        NatsSubscriber(guarded.url, "deploys.>", token=token) as heard,
    ):
        await NatsProvider().send(sample("start"), subject(guarded.url, token=token))
        heard.wait_for(lambda got: len(got) == 1)


async def test_jetstream_keeps_a_resent_event_once() -> None:
    with NatsServer(jetstream=True) as server:
        client = await nats.connect(server.url)
        stream = client.jetstream()
        await stream.add_stream(name="DEPLOYS", subjects=["deploys.>"], duplicate_window=3600)
        provider = NatsProvider()
        first = await provider.send(sample("failure"), subject(server.url, jetstream=True))
        again = await NatsProvider().send(sample("failure"), subject(server.url, jetstream=True))
        info = await stream.stream_info("DEPLOYS")
        with pytest.raises(PermanentDeliveryError) as caught:
            await provider.send(sample("failure"), subject(server.url, "elsewhere", jetstream=True))
        await client.close()
    assert first.detail == "stored in stream DEPLOYS seq 1"
    assert again.detail == "stored in stream DEPLOYS seq 1 (a repeat: the stream kept the first)"
    assert info.state.messages == 1
    assert "no JetStream stream captures the subject" in caught.value.message
