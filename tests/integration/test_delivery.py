"""End to end: DeployJobs notify real peers of all five types through the operator process."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    delivered,
    deployment,
    events,
    notifying,
    sent_everywhere,
    wait_dj,
)
from tests.support.deploybell import webhook_events as received_events
from tests.support.operator import OperatorProcess
from tests.support.peers.hipchat import HipchatPeer
from tests.support.peers.irc import IrcListener, NgircdServer
from tests.support.peers.slack import TEST_TOKEN, SlackPeer
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
TYPES = ("slack", "hipchat", "irc", "email", "webhook")
all_sent = functools.partial(sent_everywhere, TYPES)
subscribed_to_all = functools.partial(notifying, TYPES)
HMAC_KEY = "hmac-test-key"
HIPCHAT_TOKEN = "hipchat-test-token"


@dataclass
class Peers:
    slack: SlackPeer
    hipchat: HipchatPeer
    webhook: WebhookPeer
    smtp: SmtpPeer
    ircd: NgircdServer
    irc: IrcListener


@pytest.fixture(scope="module")
def peers(smtp_peer: SmtpPeer) -> Iterator[Peers]:
    with (
        SlackPeer() as slack,
        HipchatPeer(token=HIPCHAT_TOKEN) as hipchat,
        WebhookPeer(hmac_key=HMAC_KEY) as webhook,
        NgircdServer() as ircd,
        IrcListener(ircd.host, ircd.port, nick="watcher") as irc,
    ):
        yield Peers(slack, hipchat, webhook, smtp_peer, ircd, irc)


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def notification(name: str, type_: str, recipients: list[str] | None = None,
                 secret_name: str | None = None) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"type": type_}
    if recipients:
        spec["recipients"] = recipients
    if secret_name:
        spec["secretRef"] = {"name": secret_name}
    return {"apiVersion": "deploybell.io/v1alpha1", "kind": "Notification",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def setup_notifications(cluster: ClusterAccess, ns: str, peers: Peers) -> str:
    """One Notification per type in `ns`; returns the IRC channel they announce in."""
    channel = f"#{ns[-12:]}"
    peers.irc.join(channel)
    cluster.apply([
        secret("slack", {"token": TEST_TOKEN, "apiUrl": peers.slack.base_url}),
        secret("hipchat", {"token": HIPCHAT_TOKEN, "url": peers.hipchat.url}),
        secret("webhook", {"url": peers.webhook.url, "hmacKey": HMAC_KEY}),
        notification("slack", "slack", ["#deploys"], "slack"),
        notification("hipchat", "hipchat", ["#deploys"], "hipchat"),
        notification("irc", "irc", [peers.ircd.recipient(channel)]),
        notification("email", "email", [f"{ns}@example.test"]),
        notification("webhook", "webhook", None, "webhook"),
    ], ns)  # fmt: skip
    return channel


def webhook_events(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    return received_events(peers.webhook, ns, job)


def slack_messages(peers: Peers, ns: str, job: str) -> list[dict[str, Any]]:
    """Top-level messages about the job (thread replies excluded)."""
    return [
        m
        for m in peers.slack.messages("C0DEPLOYS")
        if f"{ns}/{job}" in json.dumps(m) and m.get("thread_ts") in (None, m["ts"])
    ]


def test_success_reaches_every_provider(cluster: ClusterAccess, namespace: str,
                                        peers: Peers) -> None:  # fmt: skip
    ns = namespace
    channel = setup_notifications(cluster, ns, peers)
    cluster.apply(subscribed_to_all("web", [deployment("web", 2)]), ns)
    status = wait_dj(cluster, ns, "web", "every message sent", all_sent(1, "success"),
                     timeout=120)["status"]  # fmt: skip
    assert {c["type"]: c["status"] for c in status["conditions"]}[
        "NotificationsDelivered"
    ] == "True"

    # Webhook: CloudEvents, signed, one event per message with the idempotency key as id.
    events_ = webhook_events(peers, ns, "web")
    assert [e["type"] for e in events_] == ["io.deploybell.deployjob.start",
                                            "io.deploybell.deployjob.success"]  # fmt: skip
    assert len({e["id"] for e in events_}) == 2
    assert all(r.verified for r in peers.webhook.received
               if isinstance(r.json, dict) and r.json.get("subject") == f"{ns}/web")  # fmt: skip
    assert events_[1]["data"]["cluster"] == "local-test"

    # Slack: one message, posted at start and updated in place, plus a thread reply.
    [message] = slack_messages(peers, ns, "web")
    assert "succeeded" in json.dumps(message), message
    assert peers.slack.replies("C0DEPLOYS", message["ts"]), "no thread reply"

    # E-mail, HipChat and IRC got both events too.
    mails = [m for m in peers.smtp.received if f"{ns}@example.test" in m.rcpt_tos]
    assert [m.message["X-Deploybell-Event"] for m in mails] == ["start", "success"]
    assert "succeeded" in str(mails[1].message["Subject"])
    rooms = [r for r in peers.hipchat.received if f"{ns}/web" in r.message]
    assert len(rooms) == 2
    heard = peers.irc.wait_for(lambda h: h.target == channel and "succeeded" in h.text)
    assert heard.command == "NOTICE"


def test_failure_messages_carry_the_diagnosis(cluster: ClusterAccess, namespace: str,
                                              peers: Peers) -> None:  # fmt: skip
    ns = namespace
    channel = setup_notifications(cluster, ns, peers)
    crashing = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(subscribed_to_all("api", [crashing]), ns)
    status = wait_dj(cluster, ns, "api", "failure sent everywhere", all_sent(1, "failure"),
                     timeout=120)["status"]  # fmt: skip
    pod = status["diagnosis"]["pods"][0]
    assert pod["reason"] == "CrashLoopBackOff"
    assert pod["exitCode"] == 1
    needle = pod["pod"]
    failure = webhook_events(peers, ns, "api")[-1]
    assert failure["data"]["pods"][0]["pod"] == needle
    assert needle in json.dumps(slack_messages(peers, ns, "api"))
    mail = [m for m in peers.smtp.received if f"{ns}@example.test" in m.rcpt_tos][-1]
    assert needle in mail.message.get_body(("plain",)).get_content()
    assert any(needle in r.message for r in peers.hipchat.received)
    peers.irc.wait_for(lambda h: h.target == channel and needle in h.text)


def test_cancel_is_announced(cluster: ClusterAccess, namespace: str, peers: Peers) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    cluster.apply(subscribed_to_all("slow", [deployment("slow", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "slow", "start sent", lambda s: delivered(s, 1, "start") == set(TYPES))
    cluster.kubectl("annotate", "dj/slow", "-n", ns, "deploybell.io/cancel=now")
    wait_dj(cluster, ns, "slow", "cancel sent", all_sent(1, "cancel"))
    assert webhook_events(peers, ns, "slow")[-1]["type"] == "io.deploybell.deployjob.cancel"


def test_restart_between_start_and_outcome_sends_no_duplicate(
    cluster: ClusterAccess, namespace: str, peers: Peers, operator: OperatorProcess
) -> None:
    ns = namespace
    setup_notifications(cluster, ns, peers)
    cluster.apply(subscribed_to_all("web", [deployment("web")], stabilitySeconds=6), ns)
    wait_dj(
        cluster,
        ns,
        "web",
        "start sent, verifying",
        lambda s: s.get("phase") == "Verifying" and delivered(s, 1, "start") == set(TYPES),
    )
    operator.kill()
    operator.start()
    wait_dj(cluster, ns, "web", "success sent", all_sent(1, "success"), timeout=120)
    assert [e["type"].rsplit(".", 1)[1] for e in webhook_events(peers, ns, "web")] == [
        "start", "success"]  # fmt: skip
    [message] = slack_messages(peers, ns, "web")  # updated in place, not posted again
    assert "succeeded" in json.dumps(message)
    mails = [m for m in peers.smtp.received if f"{ns}@example.test" in m.rcpt_tos]
    assert len(mails) == 2


def test_failed_delivery_is_reported_and_does_not_fail_the_deploy(
    cluster: ClusterAccess, namespace: str, peers: Peers
) -> None:
    ns = namespace
    cluster.apply([secret("bad-slack", {"token": "xoxb-wrong", "apiUrl": peers.slack.base_url}),
                   notification("slack", "slack", ["#deploys"], "bad-slack")], ns)  # fmt: skip
    dj = subscribed_to_all("web", [deployment("web")])
    dj["spec"]["onStart"] = dj["spec"]["always"] = [{"notify": "slack"}]
    cluster.apply(dj, ns)
    status = wait_dj(cluster, ns, "web", "delivery failed",
                     lambda s: any(e["state"] == "Failed" for e in s.get("notifications") or [])
                     and s.get("phase") == "Succeeded")["status"]  # fmt: skip
    condition = {c["type"]: c for c in status["conditions"]}["NotificationsDelivered"]
    assert condition["status"] == "False"
    assert "invalid_auth" in condition["message"]
    assert "xoxb-wrong" not in json.dumps(status)
    wait_for(
        "NotificationFailed event",
        lambda: any(r == "NotificationFailed" for r, _ in events(cluster, ns, "web")),
    )
    assert all("xoxb-wrong" not in m for _, m in events(cluster, ns, "web"))


def test_every_message_says_which_commit_went_to_which_environment(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    """spec.source reaches the messages; without an environment the namespace is the one."""
    from tests.support.deploybell import configmap, subscribed

    ns = notification_ns
    sha = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
    source = {"repository": "https://git.example/acme/web", "revision": sha}
    cluster.apply(
        [
            subscribed("prod", [configmap("prod", {"a": "1"})], source={**source,
                       "environment": "production"}),
            subscribed("plain", [configmap("plain", {"a": "1"})], source=source),
        ],
        ns,
    )  # fmt: skip
    for job, environment in (("prod", "production"), ("plain", ns)):
        got = wait_for(
            f"start and success of {job}",
            lambda job=job: (e := received_events(webhook_peer, ns, job)) and len(e) >= 2 and e,
        )
        for event in got:
            assert event["data"]["environment"] == environment
            assert event["data"]["commit"] == sha
            assert event["data"]["repository"] == source["repository"]
