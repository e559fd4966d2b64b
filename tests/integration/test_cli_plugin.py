"""`kubectl deploybell` against the real cluster, with DeployJobs driven by the real operator.

The plugin runs as users run it: found by kubectl on PATH (`kubectl deploybell …`) or as the
`kubectl-deploybell` console script, in a subprocess with KUBECONFIG set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    UNSCHEDULABLE,
    deployment,
    finished,
    get_dj,
    ledger,
    service,
    subscribed,
    wait_dj,
    webhook_events,
)
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
BIN = Path(sys.executable).parent
NOTE = "deploy-notification"
TOKEN = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def plugin(
    cluster: ClusterAccess, *args: str, kubeconfig: Path | None = None, via_kubectl: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYBELL_")}
    env["KUBECONFIG"] = str(kubeconfig or cluster.kubeconfig)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    command = (
        [str(cluster.bin_dir / "kubectl"), "deploybell"]
        if via_kubectl
        else [str(BIN / "kubectl-deploybell")]
    )
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=180)


def rows(text: str, after: str) -> list[list[str]]:
    """The rows of the table under the heading `after` (e.g. "Resources:"), split into cells."""
    lines = text.splitlines()
    start = lines.index(after) + 2  # the heading, then the column names
    table = []
    for line in lines[start:]:
        if not line.strip():
            break
        table.append(line.split())
    return table


def test_status_history_and_redeploy(cluster: ClusterAccess, notification_ns: str) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web", 2), service("web")]), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))

    shown = plugin(cluster, "status", "web", "-n", ns, via_kubectl=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:3] == [
        f"DeployJob {ns}/web",
        "Phase:       Succeeded (run 1)",
        "Reason:      RolloutComplete",
    ]
    assert sorted(row[:4] for row in rows(shown.stdout, "Resources:")) == [
        ["Deployment", ns, "web", "Current"],
        ["Service", ns, "web", "Current"],
    ]
    assert [row[:3] for row in rows(shown.stdout, "Last runs:")] == [
        ["1", "Succeeded", "RolloutComplete"]
    ]
    # A webhook has one recipient (its URL): run, event, notification, recipients, state.
    assert [row[:5] for row in rows(shown.stdout, "Notifications:")] == [
        ["1", "start", NOTE, "1", "Sent"],
        ["1", "success", NOTE, "1", "Sent"],
    ]

    data = json.loads(plugin(cluster, "status", "web", "-n", ns, "-o", "json").stdout)
    assert (data["name"], data["namespace"], data["phase"], data["run"]) == (
        "web",
        ns,
        "Succeeded",
        1,
    )
    assert ledger(data) == [(1, "start", NOTE, "Sent"), (1, "success", NOTE, "Sent")]
    as_yaml = plugin(cluster, "-n", ns, "status", "web", "--output", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == data

    redeployed = plugin(cluster, "redeploy", "web", "-n", ns, "--wait", "--timeout", "90")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    lines = redeployed.stdout.splitlines()
    assert lines[0] == f"redeploy requested for DeployJob {ns}/web"
    assert "Phase:       Succeeded (run 2)" in lines
    annotations = get_dj(cluster, ns, "web")["metadata"]["annotations"]
    assert TOKEN.fullmatch(annotations["deploybell.io/redeploy"])

    runs = json.loads(plugin(cluster, "history", "web", "-n", ns, "-o", "json").stdout)
    assert [(r["run"], r["phase"]) for r in runs] == [(2, "Succeeded"), (1, "Succeeded")]
    history = plugin(cluster, "history", "web", "-n", ns)
    assert history.returncode == 0
    assert [line.split()[:3] for line in history.stdout.splitlines()] == [
        ["RUN", "PHASE", "REASON"],
        ["2", "Succeeded", "RolloutComplete"],
        ["1", "Succeeded", "RolloutComplete"],
    ]


def test_cancel_a_run_in_flight(
    cluster: ClusterAccess, notification_ns: str, webhook_peer: WebhookPeer
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web", node_selector=UNSCHEDULABLE)]), ns)
    wait_dj(cluster, ns, "web", "run 1 Deploying", finished(1, "Deploying"))

    in_flight = plugin(cluster, "status", "web", "-n", ns)
    assert in_flight.returncode == 3
    assert in_flight.stdout.splitlines()[1] == "Phase:       Deploying (run 1)"

    canceled = plugin(cluster, "cancel", "web", "-n", ns, "--wait", "--timeout", "60")
    assert canceled.returncode == 0, canceled.stdout + canceled.stderr
    lines = canceled.stdout.splitlines()
    assert lines[0] == f"cancel requested for run 1 of DeployJob {ns}/web"
    assert "Phase:       Canceled (run 1)" in lines
    obj = wait_dj(cluster, ns, "web", "cancel sent", finished(1, "Canceled"))
    token = obj["metadata"]["annotations"]["deploybell.io/cancel"]
    assert TOKEN.fullmatch(token)
    assert obj["status"]["canceledBy"] == token
    assert ledger(obj["status"]) == [(1, "start", NOTE, "Sent"), (1, "cancel", NOTE, "Sent")]
    kinds = wait_for(
        "the cancel event at the webhook",
        lambda: (
            [e["type"] for e in webhook_events(webhook_peer, ns, "web")][-1:]
            == ["io.deploybell.deployjob.cancel"]
        ),
    )
    assert kinds

    assert plugin(cluster, "status", "web", "-n", ns).returncode == 1
    again = plugin(cluster, "cancel", "web", "-n", ns)
    assert (again.returncode, again.stdout) == (
        0,
        f"DeployJob {ns}/web has no run in flight (run 1 Canceled)\n",
    )
    assert get_dj(cluster, ns, "web")["metadata"]["annotations"]["deploybell.io/cancel"] == token


def test_status_of_a_failed_run_names_the_failing_pod(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    ns = notification_ns
    crashing = deployment("api", 1, annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    cluster.apply(subscribed("api", [crashing]), ns)
    wait_dj(cluster, ns, "api", "Failed", finished(1, "Failed"), timeout=60)

    shown = plugin(cluster, "status", "api", "-n", ns)
    assert shown.returncode == 1
    assert shown.stdout.splitlines()[1:3] == [
        "Phase:       Failed (run 1)",
        "Reason:      CrashLoopBackOff",
    ]
    (pod,) = rows(shown.stdout, "Failing pods:")
    assert pod[0].startswith("api-")
    assert pod[1:3] == ["app", "CrashLoopBackOff"]


def test_test_command_sends_through_the_notification(
    cluster: ClusterAccess, notification_ns: str
) -> None:
    done = plugin(cluster, "test", NOTE, "-n", notification_ns, via_kubectl=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 of 1 delivered"


def test_the_namespace_defaults_to_the_kubeconfig_context(
    cluster: ClusterAccess, notification_ns: str, tmp_path: Path
) -> None:
    ns = notification_ns
    cluster.apply(subscribed("web", [deployment("web")]), ns)
    wait_dj(cluster, ns, "web", "run 1 Succeeded", finished(1, "Succeeded"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig.read_text())
    subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "config",
         "set-context", "--current", f"--namespace={ns}"],
        check=True, capture_output=True,
    )  # fmt: skip
    shown = plugin(cluster, "status", "web", kubeconfig=kubeconfig)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"DeployJob {ns}/web"


@pytest.mark.parametrize("command", ["status", "history", "cancel", "redeploy"])
def test_a_missing_job_exits_4(cluster: ClusterAccess, namespace: str, command: str) -> None:
    done = plugin(cluster, command, "nope", "-n", namespace)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == f"error: DeployJob nope not found in namespace {namespace}\n"


def test_an_unreachable_cluster_exits_5(cluster: ClusterAccess, tmp_path: Path) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    done = plugin(cluster, "status", "web", "-n", "default", kubeconfig=kubeconfig)
    assert (done.returncode, done.stdout) == (5, "")
    assert done.stderr.startswith("error: cannot reach the cluster: "), done.stderr


def test_bad_usage_exits_2(cluster: ClusterAccess) -> None:
    done = plugin(cluster, "status")
    assert done.returncode == 2
    assert "the following arguments are required: NAME" in done.stderr
