"""`make demo`'s scenario, run non-interactively: every expected notification arrives."""

from __future__ import annotations

import os
import re
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
    assert "OK: 54 notifications delivered for 4 DeployJobs" in transcript
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
    # Every sink in the start line, each one separated ("Google ChatGitHub API" was printed).
    assert "Discord, Google Chat, GitHub API, Grafana API" in transcript
    assert "left out" not in transcript  # every sink started here
    assert "CrashLoopBackOff" in transcript  # the failure's diagnosis reached the sinks
    assert "in_progress: ▶ deploybell-demo/web started" in transcript  # a GitHub deployment
    assert "PATCH region of" in transcript  # a Grafana region from a run's start to its end
    table = transcript[transcript.index("NAME") :]
    # The second cluster as a target: the messages name it, its Deployment is there.
    assert "deploybell-demo/web-edge succeeded on edge-eu (run 1)" in transcript
    edge = transcript[transcript.index("what web-edge deployed there") :]
    assert re.search(r"^web\s+2/2\s", edge, re.MULTILINE), edge[:500]
    jobs = (
        ("web", "Succeeded"),
        ("api", "Failed"),
        ("batch", "Canceled"),
        ("web-edge", "Succeeded"),
    )
    for job, phase in jobs:
        row = next(line for line in table.splitlines() if f"deployjob.deploybell.io/{job} " in line)
        assert phase in row, row
