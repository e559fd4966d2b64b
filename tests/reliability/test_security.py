"""Security: secrets never leak, impersonation confines a DeployJob, namespaces are walls."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    configmap,
    deployment,
    finished,
    secret,
    subscribed,
    wait_dj,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.slack import SlackPeer
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
CANARIES = {
    "slack": "xoxb-CANARY-slack-7f3a",
    "hook": "CANARY-hook-91c2",
    "mail": "CANARY-smtp-55d1",
    "hmac": "CANARY-hmac-0b7e",
}


def notification(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_canary_secrets_never_leak(
    cluster: ClusterAccess,
    namespace: str,
    operator: OperatorProcess,
    smtp_peer: SmtpPeer,
    webhook_peer: WebhookPeer,
) -> None:
    ns = namespace
    with SlackPeer() as slack:
        cluster.apply(
            [
                secret("slack", {"token": CANARIES["slack"], "apiUrl": slack.base_url}),
                # Unreachable, with the canary in the path: every attempt fails and is retried.
                secret("hook-down", {"url": f"http://127.0.0.1:9/hooks/{CANARIES['hook']}"}),
                secret("hook-ok", {"url": webhook_peer.url, "hmacKey": CANARIES["hmac"]}),
                secret(
                    "mail",
                    {
                        "host": smtp_peer.host,
                        "port": str(smtp_peer.port),
                        "username": "canary-user",
                        "password": CANARIES["mail"],
                    },
                ),
                notification(
                    "slack",
                    {"type": "slack", "recipients": ["#deploys"], "secretRef": {"name": "slack"}},
                ),
                notification("hook-down", {"type": "webhook", "secretRef": {"name": "hook-down"}}),
                notification("hook-ok", {"type": "webhook", "secretRef": {"name": "hook-ok"}}),
                notification(
                    "mail",
                    {
                        "type": "email",
                        "recipients": ["a@example.test"],
                        "secretRef": {"name": "mail"},
                    },
                ),
            ],
            ns,
        )
        hooks = [{"notify": n} for n in ("slack", "hook-down", "hook-ok", "mail")]
        broken = deployment("api", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
        cluster.apply(
            subscribed("api", [broken])
            | {"spec": {"manifests": [broken], "onStart": hooks, "always": hooks}},
            ns,
        )

        def every_delivery_settled_or_failing(status: dict[str, Any]) -> bool:
            entries = status.get("notifications") or []
            retrying = {e["notification"] for e in entries if e.get("lastError")}
            return (
                status.get("phase") == "Failed"
                and len(entries) >= 8
                and all(e["state"] != "Pending" or e["notification"] in retrying for e in entries)
            )

        wait_dj(
            cluster,
            ns,
            "api",
            "failed, deliveries settled or failing",
            every_delivery_settled_or_failing,
            timeout=120,
        )
        failing = [
            e
            for e in wait_dj(cluster, ns, "api", "", lambda s: True)["status"]["notifications"]
            if e.get("lastError")
        ]
        assert failing, "the scenario must include failing deliveries"
        places = {
            "operator log": operator.log_text(),
            "events": cluster.kubectl("get", "events", "-n", ns, "-o", "json"),
            "deployjob": cluster.kubectl("get", "dj", "-n", ns, "-o", "json"),
            "notifications": cluster.kubectl("get", "dbn", "-n", ns, "-o", "json"),
            "webhook messages": json.dumps([r.json for r in webhook_peer.received]),
            "mails": "\n".join(m.raw.decode(errors="replace") for m in smtp_peer.received),
            "slack messages": json.dumps(slack.messages()),
        }
    leaks = [
        (where, name)
        for where, text in places.items()
        for name, value in CANARIES.items()
        if value in text
    ]
    print(
        f"\nsecurity: {len(CANARIES)} canaries, {len(places)} places searched, "
        f"{len(failing)} failing deliveries, leaks={len(leaks)}"
    )
    assert leaks == []


def test_impersonation_confines_a_deployjob_to_its_rights(
    cluster: ClusterAccess, namespace: str
) -> None:
    ns = namespace
    other = f"{ns}-other"[:63]
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.kubectl("create", "serviceaccount", "deployer", "-n", ns)
        cluster.kubectl(
            "create",
            "rolebinding",
            "deployer",
            "-n",
            ns,
            "--clusterrole=edit",
            f"--serviceaccount={ns}:deployer",
        )
        steal = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "planted", "namespace": other},
            "stringData": {"a": "b"},
        }
        crb = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{ns}-escalate"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
        }
        for name, manifest in (("steal", steal), ("escalate", crb)):
            cluster.apply(
                subscribed(
                    name, [configmap(f"{name}-ok", {}), manifest], serviceAccountName="deployer"
                ),
                ns,
            )
        for name in ("steal", "escalate"):
            status = wait_dj(cluster, ns, name, "Failed", lambda s: s.get("phase") == "Failed")[
                "status"
            ]
            assert status["reason"] == "Forbidden", status
        assert cluster.get("secret", "planted", other) is None
        assert not cluster.kubectl(
            "get", "clusterrolebinding", f"{ns}-escalate", "--ignore-not-found", "-o", "name"
        )
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_notifications_and_secrets_stay_in_their_namespace(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    ns = namespace
    other = f"{ns}-x"[:63]
    cluster.kubectl("create", "namespace", other)
    try:
        # The Secret and a Notification exist only in the other namespace.
        cluster.apply(secret("hook", {"url": webhook_peer.url}), other)
        cluster.apply(
            notification("shared", {"type": "webhook", "secretRef": {"name": "hook"}}), other
        )
        cluster.apply(notification("mine", {"type": "webhook", "secretRef": {"name": "hook"}}), ns)
        wait_for(
            "Notification mine not Ready",
            lambda: next(
                (
                    c
                    for c in (
                        (cluster.get("notifications.deploybell.io", "mine", ns) or {}).get("status")
                        or {}
                    ).get("conditions", [])
                    if c["status"] == "False" and "Secret hook not found" in c["message"]
                ),
                None,
            ),
        )
        cluster.apply(subscribed("web", [deployment("web")], notification="shared"), ns)
        status = wait_dj(
            cluster,
            ns,
            "web",
            "Succeeded, message waiting",
            lambda s: (
                s.get("phase") == "Succeeded"
                and all(e.get("lastError") for e in s.get("notifications") or [])
            ),
        )["status"]
        assert all(e["state"] == "Pending" for e in status["notifications"])
        assert "not found" in status["notifications"][0]["lastError"]
        assert not [
            r
            for r in webhook_peer.received
            if isinstance(r.json, dict) and r.json.get("subject") == f"{ns}/web"
        ]
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def replay(peer: WebhookPeer, body: bytes, headers: Mapping[str, str]) -> int:
    """POST `body` to the peer with the given headers, as an attacker on the path could."""
    connection = http.client.HTTPConnection(peer.host, peer.port, timeout=10)
    try:
        connection.request("POST", peer.path, body=body, headers=dict(headers))
        return connection.getresponse().status
    finally:
        connection.close()


def test_webhook_signature_exposes_a_tampered_body(cluster: ClusterAccess, namespace: str) -> None:
    """The receiver checks X-Deploybell-Signature (HMAC-SHA256 of the raw body) and refuses a
    mismatch with 401: the real messages pass, the same message with one field changed does not,
    and a Notification holding the wrong key gets a clear, permanent delivery failure."""
    ns = namespace
    with WebhookPeer(hmac_key="right-key", require_signature=True) as hook:
        cluster.apply(
            [
                secret("signed", {"url": hook.url, "hmacKey": "right-key"}),
                secret("wrong", {"url": hook.url, "hmacKey": "wrong-key"}),
                notification("signed", {"type": "webhook", "secretRef": {"name": "signed"}}),
                notification("wrong", {"type": "webhook", "secretRef": {"name": "wrong"}}),
                subscribed("web", [deployment("web")], notification="signed"),
            ],
            ns,
        )
        wait_dj(cluster, ns, "web", "Succeeded, sent", finished(1, "Succeeded"))
        genuine = [r for r in hook.received if r.status == 204]
        assert [r.json["type"].rsplit(".", 1)[1] for r in genuine] == ["start", "success"]
        assert all(r.verified for r in genuine)

        original = genuine[-1]
        headers = {k: v for k, v in original.headers.items() if k.lower() != "content-length"}
        forged = json.loads(original.body)
        forged["type"] = "io.deploybell.deployjob.failure"
        assert replay(hook, original.body, headers) == 204, "an untouched replay still verifies"
        assert replay(hook, json.dumps(forged).encode(), headers) == 401
        assert hook.received[-1].verified is False

        cluster.apply(subscribed("api", [deployment("api")], notification="wrong"), ns)
        status = wait_dj(cluster, ns, "api", "Succeeded, refused", finished(1, "Succeeded"))[
            "status"
        ]
    refused = [e for e in status["notifications"] if e["run"] == 1]
    assert {e["state"] for e in refused} == {"Failed"}, refused
    assert all("HTTP 401" in e["lastError"] for e in refused), refused
    print(f"\nhmac: genuine verified {len(genuine)}/2, tampered replay refused; wrong key: 401")
