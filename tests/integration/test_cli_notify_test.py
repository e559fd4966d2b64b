"""`deploybell notify-test` as users run it: a subprocess reading the real cluster, sending to
real local peers through the operator's own providers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import notification
from tests.support.peers.slack import TEST_TOKEN, SlackPeer
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("crds")
BIN = Path(sys.executable).parent


def deploybell(cluster: ClusterAccess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYBELL_")}
    return subprocess.run(
        [str(BIN / "deploybell"), *args],
        capture_output=True,
        text=True,
        env={**env, "KUBECONFIG": str(cluster.kubeconfig)},
        timeout=120,
    )


@pytest.fixture
def slack_peer() -> Iterator[SlackPeer]:
    with SlackPeer() as peer:
        yield peer


def test_webhook_gets_a_labelled_test_event(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = notification_ns
    before = len(webhook_peer.received)
    done = deploybell(cluster, "notify-test", "deploy-notification", "-n", ns)
    assert done.stdout.splitlines() == [
        f"Notification {ns}/deploy-notification (webhook): a test message to 1 recipient",
        "  (webhook)  delivered: HTTP 204",
        "1 of 1 delivered",
    ], done.stderr
    assert done.returncode == 0
    event = next(r for r in webhook_peer.received[before:] if r.json["subject"].startswith(ns))
    assert event.valid, event.problems
    assert event.data["test"] is True
    assert event.data["title"] == f"[test] ✔ {ns}/deploy-notification succeeded (run 0)"
    assert event.json["type"] == "io.deploybell.deployjob.success"


def test_slack_reports_each_recipient_and_exits_1_when_one_fails(
    cluster: ClusterAccess, namespace: str, slack_peer: SlackPeer
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "slack-integration"},
        "stringData": {"token": TEST_TOKEN, "apiUrl": slack_peer.base_url},
    }
    chat = notification("chat", "slack")
    chat["spec"] |= {
        "recipients": ["#deploys", "#nowhere"],
        "secretRef": {"name": secret["metadata"]["name"]},
    }
    cluster.apply([secret, chat], namespace)

    done = deploybell(cluster, "notify-test", "chat", "-n", namespace, "--event", "failure")

    lines = done.stdout.splitlines()
    assert lines[0] == f"Notification {namespace}/chat (slack): a test message to 2 recipients"
    assert lines[1].startswith("  #deploys  delivered: posted to C0DEPLOYS at "), lines
    assert lines[2] == (
        "  #nowhere  NOT delivered (permanent): "
        "slack: chat.postMessage failed: channel_not_found (HTTP 200)"
    )
    assert lines[3:] == ["1 of 2 delivered"]
    assert done.returncode == 1
    (posted,) = slack_peer.messages("C0DEPLOYS")
    assert posted["text"] == f"[test] ✖ {namespace}/chat failed (run 0)"
    assert TEST_TOKEN not in done.stdout + done.stderr


def test_email_uses_the_smtp_flags(
    cluster: ClusterAccess, namespace: str, smtp_peer: SmtpPeer
) -> None:
    cluster.apply(notification("mail", "email"), namespace)
    done = deploybell(
        cluster,
        "notify-test", "mail", "-n", namespace,
        "--smtp-host", smtp_peer.host,
        "--smtp-port", str(smtp_peer.port),
        "--smtp-from", "bell@local.test",
        "--cluster-name", "local-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1].startswith("  deploys@example.test  delivered: 250 ")
    mail = smtp_peer.wait_for(lambda m: f"{namespace}/mail" in str(m.message["Subject"]))
    assert mail.message["Subject"] == (
        f"[deploybell] [test] ✔ {namespace}/mail succeeded on local-test (run 0)"
    )
    assert mail.mail_from == "bell@local.test"


def test_a_missing_secret_is_reported_per_recipient(cluster: ClusterAccess, namespace: str) -> None:
    cluster.apply(notification("hook"), namespace)  # names Secret webhook-integration, absent
    done = deploybell(cluster, "notify-test", "hook", "-n", namespace)
    assert done.returncode == 1
    assert done.stdout.splitlines()[1:] == [
        "  (webhook)  NOT delivered: Notification hook: Secret webhook-integration not found",
        "0 of 1 delivered",
    ]


def test_a_missing_notification_exits_4(cluster: ClusterAccess, namespace: str) -> None:
    done = deploybell(cluster, "notify-test", "nope", "-n", namespace)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == f"error: Notification nope not found in namespace {namespace}\n"
