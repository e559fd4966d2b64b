"""DORA metrics from real runs: a success, a failure and a restoring success of one DeployJob
with spec.source; what status keeps, what /metrics reports and what `kubectl deploybell dora`
prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploybell.api.totals import parse_time
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import deployjob, deployment, finished, wait_dj
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.usefixtures("operator")
BIN = Path(sys.executable).parent
CRASH = {"deploybell.test/fail": "CrashLoopBackOff"}


def web(committed_at: datetime, *, crash: bool = False, revision: str = "4f2a9c1") -> Any:
    source = {
        "repository": "https://github.com/acme/web",
        "revision": revision,
        "environment": "production",
        "committedAt": committed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    manifests = [deployment("web", annotations=CRASH if crash else None)]
    return deployjob("web", manifests, source=source)


def dora(cluster: ClusterAccess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYBELL_")}
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    return subprocess.run(
        [str(BIN / "kubectl-deploybell"), "dora", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def scrape(operator: OperatorProcess) -> str:
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def seconds(earlier: str, later: str) -> float:
    start, end = parse_time(earlier), parse_time(later)
    assert start is not None, earlier
    assert end is not None, later
    return (end - start).total_seconds()


def test_success_failure_success(
    cluster: ClusterAccess, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    now = datetime.now(UTC)
    cluster.apply(web(now - timedelta(hours=2)), ns)
    wait_dj(cluster, ns, "web", "run 1 succeeded", finished(1, "Succeeded"))
    cluster.apply(web(now - timedelta(hours=1), crash=True, revision="9b1c0de"), ns)
    failed = wait_dj(cluster, ns, "web", "run 2 failed", finished(2, "Failed"))["status"]
    assert failed["failingSince"] == failed["finishedAt"]
    cluster.apply(web(now - timedelta(minutes=30), revision="77aa0e1"), ns)
    job = wait_dj(cluster, ns, "web", "run 3 succeeded", finished(3, "Succeeded"))
    status = job["status"]

    # status: the counts, the streak cleared, the history entries carrying what dora needs
    assert status["totals"] == {
        "environment": "production",
        "since": status["history"][-1]["startedAt"],
        "succeeded": 2,
        "failed": 1,
        "canceled": 0,
    }
    assert "failingSince" not in status
    run3, run2, run1 = status["history"]
    assert [h["environment"] for h in (run3, run2, run1)] == ["production"] * 3
    assert run3["failingSince"] == run2["finishedAt"]
    assert "failingSince" not in run1
    restore = seconds(run2["finishedAt"], run3["finishedAt"])
    lead_times = sorted(seconds(h["committedAt"], h["finishedAt"]) for h in (run1, run3))

    # /metrics: the counters from status, the histograms observed once per run
    labels = f'deployjob="web",environment="production",namespace="{ns}"'

    def metrics_caught_up() -> str | None:
        text = scrape(operator)
        want = f'deploybell_deployments_total{{{labels},outcome="succeeded"}} 2.0'
        return text if want in text else None

    text = wait_for("the counters read the latest status", metrics_caught_up, timeout=30)
    assert f'deploybell_deployments_total{{{labels},outcome="failed"}} 1.0' in text
    assert f'deploybell_deployments_total{{{labels},outcome="canceled"}} 0.0' in text
    assert f"deploybell_change_failures_total{{{labels}}} 1.0" in text
    env_labels = f'environment="production",namespace="{ns}"'
    assert f"deploybell_lead_time_seconds_count{{{env_labels}}} 2.0" in text
    assert f"deploybell_time_to_restore_seconds_count{{{env_labels}}} 1.0" in text
    assert f"deploybell_time_to_restore_seconds_sum{{{env_labels}}} {restore}" in text
    for commit in ("4f2a9c1", "9b1c0de", "77aa0e1"):
        assert commit not in text  # no commit SHAs in labels

    # kubectl deploybell dora: the same figures from the history
    proc = dora(cluster, "-n", ns, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (prod,) = report["environments"]
    assert prod["environment"] == "production"
    assert prod["deployJobs"] == [f"{ns}/web"]
    assert prod["runs"] == {"succeeded": 2, "failed": 1, "canceled": 0}
    assert prod["deploymentFrequency"]["deployments"] == 2
    assert prod["deploymentFrequency"]["complete"] is True
    assert prod["changeFailureRate"]["rate"] == pytest.approx(1 / 3)
    assert prod["leadTime"]["p50Seconds"] == pytest.approx(sum(lead_times) / 2)
    assert prod["leadTime"]["samples"] == 2
    assert prod["timeToRestore"]["p50Seconds"] == pytest.approx(restore)
    assert prod["timeToRestore"]["tooLittleData"] is True

    text_proc = dora(cluster, "-n", ns, "--since", "1d")
    assert text_proc.returncode == 0, text_proc.stderr
    print(text_proc.stdout)
    assert "3 finished run(s) of 1 DeployJob(s)" in text_proc.stdout
    assert "33% (1 of 3) *" in text_proc.stdout
    assert "production: too little data" in text_proc.stdout
