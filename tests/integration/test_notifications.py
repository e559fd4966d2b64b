"""Notification readiness (spec, template, Secret), template fallback, and the metrics."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from deploybell.api.kinds import WATCHED_KINDS
from deploybell.clients.kube import KubeClient
from deploybell.clients.transport import Transport
from deploybell.handlers.notification import report_readiness
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    deployment,
    events,
    finished,
    secret,
    subscribed,
    wait_dj,
    webhook_events,
    webhook_secret,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")


def ready(cluster: ClusterAccess, namespace: str, name: str) -> dict[str, Any] | None:
    obj = cluster.get("notifications.deploybell.io", name, namespace) or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), None)


def wait_ready(cluster: ClusterAccess, namespace: str, name: str, status: str,
               fragment: str = "") -> dict[str, Any]:  # fmt: skip
    def probe() -> dict[str, Any] | None:
        cond = ready(cluster, namespace, name)
        ok = cond and cond["status"] == status and fragment in cond.get("message", "")
        return cond if ok else None

    return wait_for(f"Notification {name} Ready={status} ({fragment})", probe)  # type: ignore[no-any-return]


def slack_notification(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": name},
        "spec": {"type": "slack", "recipients": ["#deploys"], "secretRef": {"name": secret}},
    }


def test_fixing_the_secret_fixes_ready(cluster: ClusterAccess, namespace: str) -> None:
    cluster.apply(slack_notification("chat", "slack-creds"), namespace)
    wait_ready(cluster, namespace, "chat", "False", "Secret slack-creds not found")
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "slack-creds"},
            "stringData": {"channel": "oops"},
        },
        namespace,
    )
    wait_ready(cluster, namespace, "chat", "False", "has no key token or webhookUrl")
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "slack-creds"},
            "stringData": {"token": "xoxb-1"},
        },
        namespace,
    )
    cond = wait_ready(cluster, namespace, "chat", "True")
    assert cond["reason"] == "Valid"
    warnings = wait_for(
        "Warning Events on the Notification",
        lambda: (
            (found := notification_warnings(cluster, namespace, "chat"))
            and len(found) >= 2
            and found
        ),
    )
    assert ("SecretNotReady", "Secret slack-creds not found") in warnings


def notification_warnings(
    cluster: ClusterAccess, namespace: str, name: str
) -> list[tuple[str, str]]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json", "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=Notification,type=Warning",
    )  # fmt: skip
    return [(e["reason"], e["message"]) for e in json.loads(out)["items"]]


def test_a_template_that_does_not_compile_is_not_ready(
    cluster: ClusterAccess, namespace: str
) -> None:
    broken = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": "mail"},
        "spec": {
            "type": "email",
            "recipients": ["a@example.test"],
            "template": {"text": "deployed {{ job }\n"},
        },
    }
    cluster.apply(broken, namespace)
    cond = wait_ready(cluster, namespace, "mail", "False", "spec.template.text: line 1")
    assert cond["reason"] == "InvalidSpec"


def test_a_template_that_cannot_render_is_not_ready_until_fixed(
    cluster: ClusterAccess, namespace: str
) -> None:
    escape = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": "mail"},
        "spec": {
            "type": "email",
            "recipients": ["a@example.test"],
            "template": {"title": "{{ job }} {{ verb }}", "text": "{{ ''.__class__.__mro__ }}"},
        },
    }
    cluster.apply(escape, namespace)
    cond = wait_ready(cluster, namespace, "mail", "False", "spec.template.title")
    assert cond["reason"] == "InvalidTemplate"
    assert cond["message"] == (
        "spec.template.title: fails to render for a sample start message "
        "(UndefinedError: 'verb' is undefined); spec.template.text: fails to render for a sample "
        "start message (SecurityError: access to attribute '__class__' of 'str' object is unsafe.)"
    )
    escape["spec"]["template"] = {"title": "{{ job }} {{ phase | lower }}"}
    cluster.apply(escape, namespace)
    wait_ready(cluster, namespace, "mail", "True")


def test_a_template_failing_at_render_time_falls_back_to_the_default(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    hook = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": "deploy-notification"},
        "spec": {
            "type": "webhook",
            "secretRef": {"name": "webhook-integration"},
            # Renders for the sample messages (they have a link), not for this operator's
            # messages: no link template is set, so the link is empty.
            "template": {"title": "{{ link[0] }} deployed"},
        },
    }
    cluster.apply([webhook_secret(webhook_peer), hook], namespace)
    wait_ready(cluster, namespace, "deploy-notification", "True")
    cluster.apply(subscribed("web", [deployment("web")]), namespace)
    wait_dj(cluster, namespace, "web", "Succeeded", finished(1, "Succeeded"))
    received = webhook_events(webhook_peer, namespace, "web")
    assert [e["data"]["title"] for e in received] == [
        f"▶ {namespace}/web started on local-test (run 1)",
        f"✔ {namespace}/web succeeded on local-test (run 1)",
    ]
    reasons = [r for r, _ in events(cluster, namespace, "web")]
    assert "NotificationTemplateFailed" in reasons


def test_metrics_count_runs_and_notifications(
    cluster: ClusterAccess, notification_ns: str, operator: OperatorProcess
) -> None:
    cluster.apply(subscribed("web", [deployment("web")]), notification_ns)
    wait_dj(cluster, notification_ns, "web", "Succeeded", finished(1, "Succeeded"))
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    assert 'deploybell_notifications_total{event="success",result="sent",type="webhook"}' in text
    assert 'deploybell_deployjob_runs_total{result="Succeeded"}' in text
    assert "deploybell_notification_delivery_seconds_bucket" in text


def test_a_namespace_is_watched_only_while_a_run_is_in_flight(
    cluster: ClusterAccess, notification_ns: str, operator: OperatorProcess
) -> None:
    """The workload and pod watches of a namespace open with its first run in flight and close
    when the last one there ends (the operator's gauge, per namespace)."""
    ns = notification_ns
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    series = f'deploybell_run_watches{{namespace="{ns}"}}'

    def watches() -> float:
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(series):
                    return float(line.split()[-1])
        return 0.0

    assert watches() == 0
    stuck = deployment("web", node_selector=UNSCHEDULABLE)
    cluster.apply(subscribed("web", [stuck, deployment("api")]), ns)
    wait_dj(cluster, ns, "web", "run 1 Deploying", finished(1, "Deploying"))
    assert wait_for(f"watches in {ns}", watches, timeout=30) == len(WATCHED_KINDS)
    cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/cancel=now")
    wait_dj(cluster, ns, "web", "run 1 Canceled", finished(1, "Canceled"))
    wait_for(f"no watches left in {ns}", lambda: watches() == 0, timeout=30)


def test_a_changed_secret_is_used_by_the_next_run(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    """Secrets are kept from the Secret watch: a new URL is what the next run's messages use,
    and the old receiver hears nothing more."""
    ns = namespace

    def replace_secret(data: dict[str, str]) -> None:  # a PUT: keys not given are gone
        body = secret("hook", data)
        body["metadata"]["namespace"] = ns
        cluster.kubectl("replace", "-f", "-", stdin=json.dumps(body))

    with WebhookPeer() as moved:
        cluster.apply(
            [
                webhook_secret(webhook_peer, "hook"),
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": "hook"},
                    "spec": {"type": "webhook", "secretRef": {"name": "hook"}},
                },
                subscribed("web", [deployment("web")], notification="hook"),
            ],
            ns,
        )
        wait_dj(cluster, ns, "web", "run 1 delivered", finished(1, "Succeeded"))
        # Readiness follows the same Secret watch that refreshes the kept copy: once Ready turns
        # False and back, the operator has seen both changes.
        replace_secret({"hmacKey": "k"})
        wait_ready(cluster, ns, "hook", "False", "url")
        replace_secret({"url": moved.url})
        wait_ready(cluster, ns, "hook", "True")
        cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/redeploy=1")
        wait_dj(cluster, ns, "web", "run 2 delivered", finished(2, "Succeeded"))
        assert [e["data"]["run"] for e in webhook_events(moved, ns, "web")] == [2, 2]
    assert [e["data"]["run"] for e in webhook_events(webhook_peer, ns, "web")] == [1, 1]


def test_a_secret_deleted_and_made_anew_with_its_notification_is_read_afresh(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    """GitOps tear-down and rebuild: the Notification and its Secret are deleted, the Secret comes
    back with another URL before the Notification does; the kept copy must not outlive it."""
    ns = namespace
    notification = {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": "hook"},
        "spec": {"type": "webhook", "secretRef": {"name": "hook"}},
    }
    with WebhookPeer() as moved:
        cluster.apply(
            [
                webhook_secret(webhook_peer, "hook"),
                notification,
                subscribed("web", [deployment("web")], notification="hook"),
            ],
            ns,
        )
        wait_dj(cluster, ns, "web", "run 1 delivered", finished(1, "Succeeded"))
        cluster.kubectl("delete", "notification.deploybell.io/hook", "secret/hook", "-n", ns)
        cluster.apply(webhook_secret(moved, "hook"), ns)
        cluster.apply(notification, ns)
        wait_ready(cluster, ns, "hook", "True")
        cluster.kubectl("annotate", "dj/web", "-n", ns, "deploybell.io/redeploy=1")
        wait_dj(cluster, ns, "web", "run 2 delivered", finished(2, "Succeeded"))
        assert [e["data"]["run"] for e in webhook_events(moved, ns, "web")] == [2, 2]
    assert [e["data"]["run"] for e in webhook_events(webhook_peer, ns, "web")] == [1, 1]


def test_deleting_a_namespace_with_notifications_and_secrets_logs_no_error(
    cluster: ClusterAccess, namespace: str, operator: OperatorProcess
) -> None:
    """Notifications and their Secrets go together with their namespace: the Secret's deletion
    finds a Notification that is gone (or going). Gone is nothing to do, not an ERROR."""
    ns = namespace
    names = [f"hook-{i}" for i in range(6)]
    for name in names:
        cluster.apply(
            [
                secret(name, {"url": "http://127.0.0.1:9/hook"}),
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": name},
                    "spec": {"type": "webhook", "secretRef": {"name": name}},
                },
            ],
            ns,
        )
    for name in names:
        wait_ready(cluster, ns, name, "True")
    start = len(operator.log_text())

    cluster.kubectl("delete", "namespace", ns, "--timeout=120s")
    # A later Notification reported on proves the operator went on past those deletions.
    after = f"{ns}-after"
    cluster.kubectl("create", "namespace", after)
    try:
        cluster.apply(slack_notification("chat", "absent"), after)
        wait_ready(cluster, after, "chat", "False", "Secret absent not found")
    finally:
        cluster.kubectl("delete", "namespace", after, "--wait=false", check=False)
    log = operator.log_text()[start:]
    assert "ERROR" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]


async def test_readiness_of_a_notification_deleted_meanwhile_is_nothing_to_do(
    cluster: ClusterAccess, namespace: str
) -> None:
    """The handler read the Notification, then it went: the API answers the status patch 404."""
    cluster.apply(slack_notification("chat", "absent"), namespace)
    wait_ready(cluster, namespace, "chat", "False", "Secret absent not found")
    seen = cluster.get("notifications.deploybell.io", "chat", namespace)
    assert seen is not None
    seen.pop("status")  # as before its first report, so the handler does patch
    cluster.kubectl("delete", "notification.deploybell.io/chat", "-n", namespace)
    kube = KubeClient(await Transport.from_environment(str(cluster.kubeconfig)))
    try:
        await report_readiness(kube, seen)  # no ApiError
    finally:
        await kube.close()

    assert cluster.get("notifications.deploybell.io", "chat", namespace) is None
