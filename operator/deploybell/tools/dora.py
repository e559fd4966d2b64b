"""The four DORA figures per environment, from DeployJob objects (pure): what
`kubectl deploybell dora` prints.

Everything comes from the runs in each DeployJob's `status.history` that finished inside the
window: deployment frequency (successful runs per day), lead time for changes (committedAt to
the successful run's end, p50), change failure rate (failed / (succeeded + failed); canceled runs
are neither) and time to restore (from the end of the first failed run after a success to the
next success, p50 and mean). The history keeps the last N runs per DeployJob (the operator's
--history-limit); when a DeployJob's oldest kept run started inside the window, earlier runs are
missing and the report says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from deploybell.api.totals import parse_time
from deploybell.deploy.run import Phase
from deploybell.tools.status import table

MIN_SAMPLES: Final = 5
"""Fewer samples than this and a figure is shown with "too little data"."""

_FINISHED = {Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELED.value}


@dataclass(frozen=True)
class FinishedRun:
    """One finished run from a history entry, with what the figures need."""

    job: str  # namespace/name
    environment: str
    phase: str
    finished: datetime
    lead_time: float | None  # seconds from committedAt, successes only
    time_to_restore: float | None  # seconds from failingSince, successes that ended a streak


@dataclass(frozen=True)
class Gap:
    """A DeployJob whose history does not reach back to the window's start."""

    job: str
    oldest_run: int
    oldest_started: str


@dataclass
class Environment:
    """The runs of one environment inside the window."""

    name: str
    jobs: set[str] = field(default_factory=set)
    runs: list[FinishedRun] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    def count(self, phase: Phase) -> int:
        return sum(r.phase == phase.value for r in self.runs)


def parse_since(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` (a bare number is days)."""
    units = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in units else "d"
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"--since must be a duration like 30d, 12h or 2w, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"--since must be positive, got {text!r}")
    return timedelta(seconds=value * units[unit])


def finished_runs(job: Mapping[str, Any], since: datetime, until: datetime) -> list[FinishedRun]:
    """The runs of one DeployJob that finished inside [since, until]."""
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    fallback = _environment(job)
    out = []
    for entry in status.get("history") or []:
        finished = parse_time(str(entry.get("finishedAt") or ""))
        if entry.get("phase") not in _FINISHED or finished is None:
            continue
        if not since <= finished <= until:
            continue
        success = entry.get("phase") == Phase.SUCCEEDED.value
        out.append(
            FinishedRun(
                job=key,
                environment=str(entry.get("environment") or fallback),
                phase=str(entry["phase"]),
                finished=finished,
                lead_time=_seconds(entry.get("committedAt"), finished) if success else None,
                time_to_restore=_seconds(entry.get("failingSince"), finished) if success else None,
            )
        )
    return out


def gap(job: Mapping[str, Any], since: datetime) -> Gap | None:
    """Whether runs of this DeployJob inside the window fell out of its history."""
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    history = [h for h in status.get("history") or [] if isinstance(h.get("run"), int)]
    if not history:
        return None
    oldest = min(history, key=lambda h: int(h["run"]))
    started = parse_time(str(oldest.get("startedAt") or ""))
    if int(oldest["run"]) <= 1 or started is None or started <= since:
        return None
    return Gap(
        f"{meta.get('namespace')}/{meta.get('name')}",
        int(oldest["run"]),
        str(oldest.get("startedAt")),
    )


def environments(
    jobs: Iterable[Mapping[str, Any]], since: datetime, until: datetime
) -> list[Environment]:
    """The finished runs inside the window, grouped by environment (sorted by name)."""
    grouped: dict[str, Environment] = {}
    for job in jobs:
        runs = finished_runs(job, since, until)
        names = {r.environment for r in runs} or {_environment(job)}
        missing = gap(job, since)
        meta = job.get("metadata") or {}
        for name in names:
            env = grouped.setdefault(name, Environment(name))
            env.jobs.add(f"{meta.get('namespace')}/{meta.get('name')}")
            env.runs += [r for r in runs if r.environment == name]
            if missing is not None:
                env.gaps.append(missing)
    return [grouped[name] for name in sorted(grouped)]


def figure(values: Sequence[float]) -> dict[str, Any]:
    """p50 and mean of durations in seconds, with the sample count and whether it is enough."""
    return {
        "p50Seconds": statistics.median(values) if values else None,
        "meanSeconds": statistics.fmean(values) if values else None,
        "samples": len(values),
        "tooLittleData": len(values) < MIN_SAMPLES,
    }


def figures(env: Environment, days: float) -> dict[str, Any]:
    """The four figures of one environment, machine-readable (`-o json|yaml`)."""
    succeeded, failed = env.count(Phase.SUCCEEDED), env.count(Phase.FAILED)
    decided = succeeded + failed
    successes = [r for r in env.runs if r.phase == Phase.SUCCEEDED.value]
    lead = figure([r.lead_time for r in successes if r.lead_time is not None])
    restore = figure([r.time_to_restore for r in successes if r.time_to_restore is not None])
    return {
        "environment": env.name,
        "deployJobs": sorted(env.jobs),
        "runs": {
            "succeeded": succeeded,
            "failed": failed,
            "canceled": env.count(Phase.CANCELED),
        },
        "deploymentFrequency": {
            "perDay": succeeded / days,
            "deployments": succeeded,
            "complete": not env.gaps,
        },
        "leadTime": {"p50Seconds": lead["p50Seconds"], **_counts(lead)},
        "changeFailureRate": {
            "rate": failed / decided if decided else None,
            "failed": failed,
            "deployments": decided,
            "tooLittleData": decided < MIN_SAMPLES,
        },
        "timeToRestore": restore,
        "historyGaps": [
            {"deployJob": g.job, "oldestRun": g.oldest_run, "oldestStartedAt": g.oldest_started}
            for g in env.gaps
        ],
    }


def report(
    jobs: Iterable[Mapping[str, Any]], since: datetime, until: datetime, scope: str
) -> dict[str, Any]:
    """The whole report: the window, what the history covers, the figures per environment."""
    jobs = list(jobs)
    days = (until - since).total_seconds() / 86400
    envs = environments(jobs, since, until)
    return {
        "scope": scope,
        "since": _stamp(since),
        "until": _stamp(until),
        "days": round(days, 3),
        "deployJobs": len(jobs),
        "runsInWindow": sum(len(e.runs) for e in envs),
        "minSamples": MIN_SAMPLES,
        "environments": [figures(e, days) for e in envs],
    }


def report_text(data: Mapping[str, Any]) -> str:
    """The report as a table, one environment per row, and notes on what it does not cover."""
    lines = [
        f"DORA figures for {data['scope']}: {_days(data['days'])} "
        f"({data['since']} to {data['until']})",
        f"History: {data['runsInWindow']} finished run(s) of {data['deployJobs']} DeployJob(s) "
        "in the window (status.history keeps each DeployJob's last runs: the operator's "
        "--history-limit)",
    ]
    envs = data["environments"]
    if not envs:
        return "\n".join([*lines, "", "no DeployJobs found"]) + "\n"
    rows: list[Sequence[object]] = [
        (
            "ENVIRONMENT",
            "DEPLOYS/DAY",
            "LEAD TIME P50",
            "CHANGE FAILURE RATE",
            "TIME TO RESTORE P50 / MEAN",
        )
    ]
    notes: list[str] = []
    for env in envs:
        rows.append(_row(env))
        notes += _notes(env)
    lines += ["", *table(rows)]
    if notes:
        lines += ["", "Notes:", *(f"  {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def human(seconds: float | None) -> str:
    """A duration as people read it: 45s, 12m30s, 3h05m, 2d04h."""
    if seconds is None:
        return "-"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _row(env: Mapping[str, Any]) -> tuple[object, ...]:
    freq, lead = env["deploymentFrequency"], env["leadTime"]
    cfr, ttr = env["changeFailureRate"], env["timeToRestore"]
    rate = "-" if cfr["rate"] is None else f"{100 * cfr['rate']:.0f}%"
    at_least = "" if freq["complete"] else ">= "
    return (
        env["environment"],
        f"{at_least}{freq['perDay']:.2f} ({freq['deployments']})",
        f"{human(lead['p50Seconds'])} {_n(lead)}",
        f"{rate} ({cfr['failed']} of {cfr['deployments']}){_little(cfr)}",
        f"{human(ttr['p50Seconds'])} / {human(ttr['meanSeconds'])} {_n(ttr)}",
    )


def _notes(env: Mapping[str, Any]) -> list[str]:
    name = env["environment"]
    notes = [
        f"{name}: the history of {g['deployJob']} starts at run {g['oldestRun']} "
        f"({g['oldestStartedAt']}), inside the window: earlier runs are not counted "
        "(raise the operator's --history-limit)"
        for g in env["historyGaps"]
    ]
    little = [
        label
        for label, key in (
            ("lead time", "leadTime"),
            ("change failure rate", "changeFailureRate"),
            ("time to restore", "timeToRestore"),
        )
        if env[key]["tooLittleData"]
    ]
    if little:
        notes.append(
            f"{name}: too little data (fewer than {MIN_SAMPLES} samples) for {', '.join(little)}"
        )
    return notes


def _n(fig: Mapping[str, Any]) -> str:
    return f"(n={fig['samples']}){_little(fig)}"


def _little(fig: Mapping[str, Any]) -> str:
    return " *" if fig["tooLittleData"] else ""


def _counts(fig: Mapping[str, Any]) -> dict[str, Any]:
    return {"samples": fig["samples"], "tooLittleData": fig["tooLittleData"]}


def _seconds(start: object, end: datetime) -> float | None:
    begin = parse_time(str(start or ""))
    if begin is None or begin > end:
        return None
    return (end - begin).total_seconds()


def _environment(job: Mapping[str, Any]) -> str:
    source = (job.get("spec") or {}).get("source") or {}
    return str(source.get("environment") or (job.get("metadata") or {}).get("namespace") or "")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(days: float) -> str:
    return f"{days:g} day(s)" if days >= 1 else f"{days * 24:g} hour(s)"
