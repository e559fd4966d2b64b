"""`kubectl deploybell dora`'s figures (tools/dora), from DeployJob objects as the operator
writes them: history entries with environment, committedAt and failingSince."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybell.tools.dora import (
    MIN_SAMPLES,
    environments,
    figure,
    gap,
    human,
    parse_since,
    report,
    report_text,
)

UNTIL = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=30)


def at(days_ago: float, minutes: float = 0) -> str:
    moment = UNTIL - timedelta(days=days_ago) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(
    number: int,
    phase: str,
    days_ago: float,
    *,
    env: str | None = "production",
    committed: str | None = None,
    failing: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "run": number,
        "phase": phase,
        "reason": {"Succeeded": "RolloutComplete", "Failed": "CrashLoopBackOff"}.get(
            phase, "Canceled"
        ),
        "message": "",
        "startedAt": at(days_ago, -2),
        "finishedAt": at(days_ago),
        "revision": "sha256:0123456789abcdef",
    }
    if env is not None:
        entry["environment"] = env
    if committed:
        entry["committedAt"] = committed
    if failing:
        entry["failingSince"] = failing
    return entry


def job(
    name: str, history: list[dict[str, Any]], ns: str = "team-a", env: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"manifests": []}
    if env:
        spec["source"] = {"environment": env}
    latest = max((h["run"] for h in history), default=0)
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "DeployJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
        "status": {
            "run": latest,
            "phase": history[0]["phase"] if history else None,
            "history": history,
        },
    }


# web: 4 successes (2 with committedAt), 2 failures in one streak restored after 1 hour,
# a cancel; one run before the window.
WEB = job(
    "web",
    [
        run(8, "Succeeded", 1, committed=at(1, -120)),
        run(7, "Succeeded", 3, failing=at(3, -60)),
        run(6, "Failed", 3, env="production", committed=None) | {"finishedAt": at(3, -30)},
        run(5, "Failed", 3) | {"finishedAt": at(3, -60), "startedAt": at(3, -62)},
        run(4, "Canceled", 5),
        run(3, "Succeeded", 10, committed=at(10, -60)),
        run(2, "Succeeded", 20),
        run(1, "Succeeded", 40),
    ],
)
# api: staging, history without environment fields (written before them): the spec's source.
API = job("api", [run(2, "Succeeded", 2, env=None), run(1, "Failed", 4, env=None)], env="staging")


def test_figures_per_environment() -> None:
    data = report([WEB, API], SINCE, UNTIL, "namespace team-a")
    assert data["days"] == 30
    assert data["runsInWindow"] == 9
    prod, staging = data["environments"]
    assert prod["environment"] == "production"
    assert prod["deployJobs"] == ["team-a/web"]
    assert prod["runs"] == {"succeeded": 4, "failed": 2, "canceled": 1}
    assert prod["deploymentFrequency"] == {
        "perDay": pytest.approx(4 / 30),
        "deployments": 4,
        "complete": True,
    }
    assert prod["leadTime"] == {"p50Seconds": 5400.0, "samples": 2, "tooLittleData": True}
    assert prod["changeFailureRate"] == {
        "rate": pytest.approx(2 / 6),
        "failed": 2,
        "deployments": 6,
        "tooLittleData": False,
    }
    assert prod["timeToRestore"] == {
        "p50Seconds": 3600.0,
        "meanSeconds": 3600.0,
        "samples": 1,
        "tooLittleData": True,
    }
    assert prod["historyGaps"] == []
    assert staging["environment"] == "staging"
    assert staging["runs"] == {"succeeded": 1, "failed": 1, "canceled": 0}
    assert staging["leadTime"]["p50Seconds"] is None


@pytest.mark.parametrize(
    ("days", "succeeded"),
    [(30, 4), (7, 2), (2, 1), (0.5, 0)],
)
def test_the_window_bounds_the_runs(days: float, succeeded: int) -> None:
    since = UNTIL - timedelta(days=days)
    (prod,) = report([WEB], since, UNTIL, "x")["environments"]
    assert prod["runs"]["succeeded"] == succeeded
    assert prod["deploymentFrequency"]["perDay"] == pytest.approx(succeeded / days)


def test_runs_in_flight_and_in_the_future_are_not_counted() -> None:
    in_flight = run(9, "Deploying", 0) | {"finishedAt": ""}
    future = run(10, "Succeeded", -1)
    (prod,) = report([job("web", [future, in_flight])], SINCE, UNTIL, "x")["environments"]
    assert prod["runs"] == {"succeeded": 0, "failed": 0, "canceled": 0}


def test_a_history_that_does_not_reach_the_window_start_is_named() -> None:
    truncated = job("web", [run(n, "Succeeded", n / 10) for n in range(40, 30, -1)])
    missing = gap(truncated, SINCE)
    assert missing is not None
    assert (missing.job, missing.oldest_run) == ("team-a/web", 31)
    data = report([truncated], SINCE, UNTIL, "namespace team-a")
    prod = data["environments"][0]
    assert prod["deploymentFrequency"]["complete"] is False
    text = report_text(data)
    assert ">= 0.33 (10)" in text
    assert "the history of team-a/web starts at run 31" in text
    assert "--history-limit" in text


def test_a_full_history_reaching_before_the_window_is_complete() -> None:
    assert gap(WEB, SINCE) is None
    assert gap(job("new", [run(1, "Succeeded", 1)]), SINCE) is None  # run 1: nothing before it
    assert gap(job("idle", []), SINCE) is None


def test_environment_change_splits_the_runs() -> None:
    moved = job(
        "web",
        [run(3, "Succeeded", 1, env="prod-eu"), run(2, "Failed", 2), run(1, "Succeeded", 3)],
    )
    envs = environments([moved], SINCE, UNTIL)
    assert [(e.name, len(e.runs)) for e in envs] == [("prod-eu", 1), ("production", 2)]


def test_a_job_without_runs_shows_its_environment_with_no_data() -> None:
    data = report([job("new", [], env="qa")], SINCE, UNTIL, "namespace team-a")
    (qa,) = data["environments"]
    assert qa["deploymentFrequency"]["deployments"] == 0
    assert qa["changeFailureRate"]["rate"] is None
    text = report_text(data)
    assert "qa" in text
    assert "too little data" in text


def test_text_report() -> None:
    text = report_text(report([WEB, API], SINCE, UNTIL, "namespace team-a"))
    lines = text.splitlines()
    assert lines[0] == (
        "DORA figures for namespace team-a: 30 day(s) "
        "(2026-10-28T12:00:00Z to 2026-11-27T12:00:00Z)"
    )
    assert "9 finished run(s) of 2 DeployJob(s)" in lines[1]
    header = next(line for line in lines if line.startswith("ENVIRONMENT"))
    assert "LEAD TIME P50" in header
    prod = next(line for line in lines if line.startswith("production"))
    assert "0.13 (4)" in prod
    assert "1h30m (n=2) *" in prod
    assert "33% (2 of 6)" in prod
    assert "1h00m / 1h00m (n=1) *" in prod
    assert (
        "production: too little data (fewer than 5 samples) for lead time, time to restore" in text
    )


def test_no_jobs() -> None:
    text = report_text(report([], SINCE, UNTIL, "all namespaces"))
    assert text.endswith("no DeployJobs found\n")


def test_figure_statistics() -> None:
    assert figure([]) == {
        "p50Seconds": None,
        "meanSeconds": None,
        "samples": 0,
        "tooLittleData": True,
    }
    got = figure([60.0, 120.0, 600.0, 30.0, 90.0])
    assert got == {"p50Seconds": 90.0, "meanSeconds": 180.0, "samples": 5, "tooLittleData": False}
    assert MIN_SAMPLES == 5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400), ("7", 7 * 86400)],
)
def test_parse_since(text: str, seconds: int) -> None:
    assert parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "-3d", "0d", "d"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (45.4, "45s"), (750, "12m30s"), (11100, "3h05m"), (187200, "2d04h")],
)
def test_human(seconds: float | None, text: str) -> None:
    assert human(seconds) == text
