"""End to end: one DeployJob run through the real operator publishes its start and its success
to the cloud message buses, each as the bus takes it: a SigV4-signed SendMessage to an SQS FIFO
queue (one group per DeployJob, deduplicated by the idempotency key), a Pub/Sub publish with a
token for a service account key and an Event Hubs send with a Shared Access Signature; each
carries the webhook type's CloudEvent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import (
    delivered,
    deployment,
    notifying,
    typed_notifications,
    wait_dj,
)
from tests.support.peers import awssqs
from tests.support.peers.awssqs import SqsPeer
from tests.support.peers.azureeventhub import EventHubPeer
from tests.support.peers.googlepubsub import PubsubPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("awssqs", "googlepubsub", "azureeventhub")


@dataclass
class Peers:
    sqs: SqsPeer
    pubsub: PubsubPeer
    hub: EventHubPeer

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The CloudEvents each bus holds, oldest first."""
        if type_ == "awssqs":
            return [json.loads(m["MessageBody"]) for m in self.sqs.delivered("deploys.fifo")]
        if type_ == "googlepubsub":
            return [json.loads(p.data) for p in self.pubsub.messages()]
        return [json.loads(e.body) for e in self.hub.events()]


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with SqsPeer() as sqs, PubsubPeer() as pubsub, EventHubPeer() as hub:
        yield Peers(sqs, pubsub, hub)


def notifications(peers: Peers) -> list[dict[str, Any]]:
    keys = {
        "awssqs": {
            "queueUrl": peers.sqs.queue_url("deploys.fifo"),
            "accessKeyId": awssqs.ACCESS_KEY,
            "secretAccessKey": awssqs.SECRET_KEY,
            "region": awssqs.REGION,
        },
        "googlepubsub": {"credentials": peers.pubsub.key(), "apiUrl": peers.pubsub.base_url},
        "azureeventhub": {
            "connectionString": peers.hub.connection_string(),
            "apiUrl": peers.hub.base_url,
        },
    }
    extra: dict[str, dict[str, Any]] = {
        "googlepubsub": {"recipients": ["deploys"], "googlepubsub": {"orderingKey": True}},
        "azureeventhub": {"azureeventhub": {"partitionKey": True}},
    }
    return typed_notifications({type_: keys[type_] for type_ in TYPES}, extra)


def test_start_and_success_reach_every_bus(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    cluster.apply(notifications(peers), ns)
    cluster.apply(notifying(TYPES, "web", [deployment("web")]), ns)

    status = wait_dj(
        cluster,
        ns,
        "web",
        "success sent to every bus",
        lambda s: set(TYPES) <= delivered(s, 1, "success"),
        120,
    )
    assert status["status"]["phase"] == "Succeeded"
    for type_ in TYPES:
        events = [e for e in peers.events(type_) if e["subject"] == f"{ns}/web"]
        assert [e["type"] for e in events] == [
            "io.deploybell.deployjob.start",
            "io.deploybell.deployjob.success",
        ], (type_, events)
        assert events[1]["data"]["title"] == f"✔ {ns}/web succeeded on local-test (run 1)"
        assert len({e["id"] for e in events}) == 2
    queued = peers.sqs.delivered("deploys.fifo")
    assert {m["MessageGroupId"] for m in queued} == {f"{ns}/web"}
    assert [m["MessageDeduplicationId"] for m in queued] == [
        e["id"] for e in peers.events("awssqs")
    ]
    assert {p.ordering_key for p in peers.pubsub.messages()} == {f"{ns}/web"}
    assert {e.partition_key for e in peers.hub.events()} == {f"{ns}/web"}
