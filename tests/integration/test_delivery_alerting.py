"""End to end: the operator delivers a DeployJob's runs to Opsgenie and incident.io peers, a real
Alertmanager, a real nats-server and an OTLP/HTTP receiver: a failed run opens the job's alerts
and the next (successful) run resolves them; every CloudEvent reaches a NATS subscriber once;
each run is one trace."""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployment, notifying, secret, sent_everywhere, wait_dj
from tests.support.peers.alertmanager import AlertmanagerServer
from tests.support.peers.incidentio import IncidentioPeer
from tests.support.peers.nats import NatsServer, NatsSubscriber
from tests.support.peers.opsgenie import OpsgeniePeer
from tests.support.peers.otel import OtlpPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("opsgenie", "alertmanager", "incidentio", "nats", "otel")
NATS_AUTH = {"user": "deploybell", "password": "e2e-nats-password"}
all_sent = functools.partial(sent_everywhere, TYPES)
job = functools.partial(notifying, TYPES)


@dataclass
class Peers:
    opsgenie: OpsgeniePeer
    alertmanager: AlertmanagerServer
    incidentio: IncidentioPeer
    nats: NatsServer
    heard: NatsSubscriber
    otel: OtlpPeer


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with (
        OpsgeniePeer() as opsgenie,
        AlertmanagerServer() as alertmanager,
        IncidentioPeer() as incidentio,
        NatsServer(**NATS_AUTH) as nats,
        NatsSubscriber(nats.url, "deploys.>", **NATS_AUTH) as heard,
        OtlpPeer() as otel,
    ):
        yield Peers(opsgenie, alertmanager, incidentio, nats, heard, otel)


def notification(type_: str, recipients: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "secretRef": {"name": type_}}
    if recipients:
        spec["recipients"] = recipients
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": type_},
        "spec": spec,
    }


def setup(cluster: ClusterAccess, ns: str, peers: Peers) -> None:
    nats_secret = {"url": peers.nats.url, "username": "deploybell", "password": "e2e-nats-password"}
    cluster.apply(
        [
            secret("opsgenie", {"apiKey": peers.opsgenie.api_key, "apiUrl": peers.opsgenie.url}),
            secret("alertmanager", {"url": peers.alertmanager.url}),
            secret("incidentio", {"url": peers.incidentio.url, "token": peers.incidentio.token}),
            secret("nats", nats_secret),
            secret("otel", {"url": peers.otel.url}),
            *(notification(t, [f"deploys.{ns}"] if t == "nats" else []) for t in TYPES),
        ],
        ns,
    )


def firing_in_alertmanager(peers: Peers, ns: str) -> list[dict[str, Any]]:
    return [a for a in peers.alertmanager.alerts() if a["labels"].get("namespace") == ns]


def test_a_failure_opens_alerts_that_the_next_success_resolves(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    setup(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(job("api", [crashing]), ns)
    wait_dj(cluster, ns, "api", "failure sent everywhere", all_sent(1, "failure"), timeout=120)

    key = next(k for k in peers.opsgenie.alerts if k.endswith(f":{ns}:api"))
    assert peers.opsgenie.alerts[key].status == "open"
    assert f"{ns}/api failed" in peers.opsgenie.alerts[key].message
    [fired] = firing_in_alertmanager(peers, ns)
    assert fired["labels"]["alertname"] == "DeployJobFailed"
    assert fired["labels"]["deployjob"] == "api"
    assert fired["status"]["state"] == "active"
    assert f"{ns}/api failed" in fired["annotations"]["summary"]
    assert peers.incidentio.alerts[key].status == "firing"

    # Fixed: run 2 succeeds after a 2 s stability window (its Verifying phase).
    cluster.apply(job("api", [deployment("api")], stabilitySeconds=2), ns)
    wait_dj(cluster, ns, "api", "run 2 sent everywhere", all_sent(2, "success"), timeout=120)
    assert peers.opsgenie.alerts[key].status == "closed"
    wait_for("Alertmanager's alert resolved", lambda: firing_in_alertmanager(peers, ns) == [])
    assert peers.incidentio.alerts[key].status == "resolved"

    # NATS: the four CloudEvents, each delivered once, its id in Nats-Msg-Id.
    heard = peers.heard.wait_for(lambda got: len(mine(got, ns)) >= 4 and mine(got, ns))
    events = [h.event() for h in heard]
    assert [e["type"].rsplit(".", 1)[1] for e in events] == ["start", "failure", "start", "success"]
    assert collections.Counter(e["id"] for e in events).most_common(1)[0][1] == 1
    assert [h.headers["Nats-Msg-Id"] for h in heard] == [e["id"] for e in events]

    # OpenTelemetry: two traces (one per run), each a start span and the run with its phases.
    spans = [s for s in peers.otel.spans() if s.attributes.get("deployment.name") == f"{ns}/api"]
    traces = collections.defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span.name)
    assert sorted(map(sorted, traces.values())) == [
        ["Deploying", "Failed", "deploy " + f"{ns}/api", "start"],
        ["Deploying", "Succeeded", "Verifying", "deploy " + f"{ns}/api", "start"],
    ]
    verifying = next(s for s in spans if s.name == "Verifying")
    assert verifying.end_ns - verifying.start_ns >= 2 * 10**9


def mine(heard: list[Any], ns: str) -> list[Any]:
    return [h for h in heard if h.subject == f"deploys.{ns}"]
