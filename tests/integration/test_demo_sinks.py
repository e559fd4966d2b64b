"""`make demo` without ngircd: the IRC sink is left out with one clear line, the other sinks start,
and the examples it applies name no Notification it left out. No cluster: only the sinks start."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import programs
from tests.support.operator import ROOT

sys.path.insert(0, str(ROOT / "hack"))
import demo

HOOKS = ("onStart", "onSuccess", "onFailure", "onCancel", "always")


def applied(texts: list[str]) -> list[dict[str, Any]]:
    return [d for text in texts for d in yaml.safe_load_all(text) if d]


def placeholders() -> dict[str, str]:
    keys = ("SLACK_API_URL", "HIPCHAT_URL", "WEBHOOK_URL", "IRC_SERVER", "TEAMS_URL")
    keys += ("DISCORD_URL", "GOOGLECHAT_URL", "GITHUB_API_URL", "GRAFANA_URL", "EDGE_KUBECONFIG")
    return {key: "http://127.0.0.1:1" for key in keys}


def test_without_ngircd_the_irc_sink_is_left_out_in_one_line_and_the_rest_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without ngircd ...
    monkeypatch.setattr(programs, "SYSTEM_DIRS", ())  # ... nor the sbin folders searched after it
    with ExitStack() as stack:
        sinks = demo.Sinks(stack)
        lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        assert sinks.irc is None
        assert sinks.ircd is None
        assert set(sinks.skipped) == {"irc"}
        values = sinks.placeholders()
        started = (sinks.slack, sinks.hipchat, sinks.webhook, sinks.smtp, sinks.teams)
        assert all(started)
        assert sinks.discord
        assert sinks.googlechat
        assert sinks.github
        assert sinks.grafana
        assert sinks.heard() == []
    assert len(lines) == 1, lines  # one line, that says what is missing, how to get it, what runs
    line = lines[0]
    assert "IRC sink left out: ngircd is not installed" in line
    assert "sudo apt-get install ngircd" in line
    assert "make deps" in line
    assert "the 9 other sinks" in line
    assert "without the team-irc Notification" in line
    assert values["IRC_SERVER"]


def test_the_examples_without_a_sink_name_only_notifications_that_are_applied() -> None:
    docs = applied(demo.examples(placeholders(), {"irc"}))
    notifications = {d["metadata"]["name"] for d in docs if d["kind"] == "Notification"}
    assert "team-irc" not in notifications
    assert len(notifications) == len(demo.SINKS) - 1
    jobs = [d for d in docs if d["kind"] == "DeployJob"]
    assert len(jobs) == demo.JOBS
    named = {e["notify"] for job in jobs for hook in HOOKS for e in job["spec"].get(hook, [])}
    assert named == notifications
    everything = applied(demo.examples(placeholders(), set()))
    assert len(everything) == len(docs) + 1  # only the Notification went, nothing else


def test_the_start_line_separates_every_sink() -> None:
    line = demo.sinks_line()
    assert line.split(": ", 1)[1].split(", ") == list(demo.SINKS.values())
    assert "Google Chat, GitHub API" in line
