"""A DeployJob at the schema's maximum stays small: 20 Notifications per hook x 50 recipients and
500 manifests, two real runs, every status write accepted and every version of the object (as a
watch sees each write) at most 256 KiB."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import configmap, deployjob, deployment, finished, wait_dj
from tests.support.operator import OperatorProcess
from tests.support.peers.slack import TEST_TOKEN, SlackPeer

pytestmark = pytest.mark.usefixtures("operator")

LIMIT = 256 * 1024
RECIPIENTS = 50  # the Notification CRD's maxItems
PER_HOOK = 20  # each hook's maxItems
MANIFESTS = 500  # spec.manifests' maxItems
# Slack channel names are up to 80 characters, their IDs 11 (C + 10).
CHANNELS = {f"deploys-{i:02d}".ljust(80, "x"): f"C{i:02d}DEPLOY{i:02d}" for i in range(RECIPIENTS)}


def name(prefix: str, i: int) -> str:
    """A Notification name of the longest length allowed (a DNS label: 63)."""
    return f"{prefix}-{i:02d}".ljust(63, "x")


EDITED = [name("chat", i) for i in range(PER_HOOK)]  # onStart, onSuccess, onFailure
TOLD = [name("told", i) for i in range(PER_HOOK)]  # always, onCancel: new messages at the end


@dataclass
class Versions:
    """Every version of one DeployJob a watch delivers, by size."""

    compact: list[int] = field(default_factory=list)  # bytes as stored (compact JSON)
    printed: list[int] = field(default_factory=list)  # bytes as `kubectl get -o json` prints
    largest: dict[str, Any] = field(default_factory=dict)

    def parts(self) -> str:
        """Where the largest version's bytes are: its metadata, spec and status fields."""
        size = {"metadata": self.largest.get("metadata"), "spec": self.largest.get("spec")}
        size |= {f"status.{k}": v for k, v in (self.largest.get("status") or {}).items()}
        counted = {k: len(json.dumps(v, separators=(",", ":"))) for k, v in size.items()}
        return ", ".join(f"{k} {v / 1024:.1f}" for k, v in counted.items() if v > 1024)


@pytest.fixture
def watched(cluster: ClusterAccess, namespace: str) -> Iterator[Versions]:
    """`kubectl get dj/big --watch -o json`: each status write arrives as one object."""
    versions = Versions()
    proc = subprocess.Popen(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "get",
         "dj", "-n", namespace, "--watch", "-o", "json"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip

    def read() -> None:
        assert proc.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in proc.stdout:
            buffer += line
            if line.rstrip() != "}":
                continue
            try:
                obj, _ = decoder.raw_decode(buffer.strip())
            except json.JSONDecodeError:
                continue
            versions.printed.append(len(json.dumps(obj, indent=4).encode()))
            versions.compact.append(len(json.dumps(obj, separators=(",", ":")).encode()))
            if versions.compact[-1] == max(versions.compact):
                versions.largest = obj
            buffer = ""

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield versions
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)


def notifications(peer: SlackPeer) -> list[dict[str, Any]]:
    token = {"token": TEST_TOKEN, "apiUrl": peer.base_url}
    data = {k: base64.b64encode(v.encode()).decode() for k, v in token.items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "slack"}, "data": data}
    recipients = [f"#{channel}" for channel in CHANNELS]
    return [secret] + [
        {
            "apiVersion": "deploybell.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": n},
            "spec": {"type": "slack", "recipients": recipients, "secretRef": {"name": "slack"}},
        }
        for n in EDITED + TOLD
    ]


def biggest() -> dict[str, Any]:
    manifests = [deployment("web")] + [
        configmap(f"settings-{i:03d}", {"k": "v"}) for i in range(MANIFESTS - 1)
    ]
    hooks = {
        "onStart": EDITED,
        "onSuccess": EDITED,
        "onFailure": EDITED,
        "onCancel": TOLD,
        "always": TOLD,
    }
    spec = {hook: [{"notify": n} for n in names] for hook, names in hooks.items()}
    return deployjob("big", manifests, **spec)


def test_the_biggest_deployjob_stays_under_256_kib(
    cluster: ClusterAccess, namespace: str, operator: OperatorProcess, watched: Versions
) -> None:
    ns = namespace
    with SlackPeer(channels=CHANNELS) as peer:
        cluster.apply(notifications(peer), ns)
        body = json.dumps(biggest())
        cluster.kubectl("apply", "--server-side", "-n", ns, "-f", "-", stdin=body)
        per_run = {"start": PER_HOOK * RECIPIENTS, "success": 2 * PER_HOOK * RECIPIENTS}
        for run in (1, 2):
            if run == 2:
                cluster.kubectl("annotate", "dj/big", "-n", ns, "deploybell.io/redeploy=again")
            status = wait_dj(cluster, ns, "big", f"run {run} delivered",
                             finished(run, "Succeeded"), timeout=600)["status"]  # fmt: skip
            rows = [e for e in status["notifications"] if e["run"] == run]
            assert {(e["event"], e["state"], e["sent"]) for e in rows} == {
                ("start", "Sent", RECIPIENTS),
                ("success", "Sent", RECIPIENTS),
            }
            counts = {event: sum(e["sent"] for e in rows if e["event"] == event)
                      for event in per_run}  # fmt: skip
            assert counts == per_run
            # What Slack saw: each start posted once, each edited start updated once (and
            # replied to in its thread), each `always` outcome posted once; nothing lost, no
            # duplicate.
            posted = peer.calls_to("chat.postMessage")
            assert len(posted) == run * 3 * PER_HOOK * RECIPIENTS
            assert len(peer.calls_to("chat.update")) == run * PER_HOOK * RECIPIENTS

        wait_for("the watch to see the last version", lambda: watched.compact, timeout=30)
        largest = max(watched.compact)
        final = cluster.kubectl("get", "dj", "big", "-n", ns, "-o", "json")
        print(
            f"\n{len(watched.compact)} versions of the DeployJob, the largest "
            f"{largest / 1024:.0f} KiB stored ({max(watched.printed) / 1024:.0f} KiB as "
            f"`kubectl get -o json` prints it); after run 2: {len(final) / 1024:.0f} KiB printed, "
            f"its ledger {len(json.dumps(json.loads(final)['status']['notifications'])) / 1024:.0f}"
            f" KiB; the largest in KiB: {watched.parts()}"
        )
        # Stored size; `kubectl get -o json` indents it (twice the bytes: 500 manifests and
        # 500 resources are many short lines), which no status layout could bring under 256 KiB.
        assert largest <= LIMIT
        refused = [line for line in operator.log_text().splitlines()
                   if "too large" in line.lower() or "RequestEntityTooLarge" in line]  # fmt: skip
        assert not refused, refused[:3]


def test_more_objects_than_a_status_can_list_fail_the_run(
    cluster: ClusterAccess, namespace: str
) -> None:
    """manifestsFrom is not counted at admission (the ConfigMaps are not part of the
    DeployJob): the run fails, naming the count, before anything is applied."""
    ns = namespace
    docs = "\n---\n".join(
        json.dumps(configmap(f"extra-{i:03d}", {"k": "v"})) for i in range(MANIFESTS)
    )
    cluster.apply(configmap("more", {"manifests.yaml": docs}), ns)
    job = deployjob("over", [configmap("inline", {"k": "v"})])
    job["spec"]["manifestsFrom"] = [{"configMapRef": {"name": "more"}}]
    cluster.apply(job, ns)
    status = wait_dj(cluster, ns, "over", "failed", finished(1, "Failed"))["status"]
    assert status["reason"] == "TooManyObjects"
    assert status["message"].startswith("501 objects in spec.manifests and spec.manifestsFrom")
    assert cluster.kubectl("get", "configmap", "inline", "-n", ns, "--ignore-not-found") == ""
