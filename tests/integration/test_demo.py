"""`make demo`'s scenario, run non-interactively: every expected notification arrives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.cluster import ClusterAccess
from tests.support.operator import ROOT

pytestmark = pytest.mark.usefixtures("crds", "no_session_operator")


def test_demo_delivers_every_expected_notification(cluster: ClusterAccess) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    transcript = proc.stdout + proc.stderr
    assert proc.returncode == 0, transcript[-4000:]
    assert "OK: 48 notifications delivered for 3 DeployJobs" in transcript
    for provider in (
        "slack",
        "hipchat",
        "irc",
        "email",
        "webhook",
        "teams",
        "discord",
        "googlechat",
        "github",
        "grafana",
    ):
        assert f"  {provider} " in transcript, f"no {provider} line in the timeline"
    assert "CrashLoopBackOff" in transcript  # the failure's diagnosis reached the sinks
    assert "in_progress: ▶ deploybell-demo/web started" in transcript  # a GitHub deployment
    assert "PATCH region of" in transcript  # a Grafana region from a run's start to its end
    table = transcript[transcript.index("NAME") :]
    for job, phase in (("web", "Succeeded"), ("api", "Failed"), ("batch", "Canceled")):
        row = next(line for line in table.splitlines() if f"deployjob.deploybell.io/{job} " in line)
        assert phase in row, row
