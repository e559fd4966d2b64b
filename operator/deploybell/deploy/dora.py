"""DORA bookkeeping of a run's outcome (pure).

A finished run moves three things that live in the DeployJob's status, written in the same patch
as the outcome: the per-outcome run counts (`status.totals`, what the Prometheus counters read),
the failing streak (`status.failingSince`: when the first failure after the last success ended)
and the history entry (environment, committedAt, and for a success that ends a streak, when the
streak began). Because the counts are status, a restarted or second operator reads the same
numbers instead of counting again; the histogram observations are made once, by the process whose
status write recorded the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from deploybell.api.deployjob import Source, environment_of
from deploybell.api.totals import OUTCOME_NAMES, Totals, parse_time
from deploybell.deploy.run import Phase, RunState

# The phases a run ends in, and their names in status.totals and the metrics' outcome label.
OUTCOMES: Final[Mapping[Phase, str]] = dict(
    zip((Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED), OUTCOME_NAMES, strict=True)
)


def seconds_between(earlier: str, later: str) -> float | None:
    """`later - earlier` in seconds; None when either is missing or the order is reversed."""
    start, end = parse_time(earlier), parse_time(later)
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True)
class Observation:
    """What the metrics observe for one finished run (seconds; None: nothing to observe)."""

    namespace: str
    environment: str
    outcome: str
    duration: float | None
    lead_time: float | None
    time_to_restore: float | None


@dataclass(frozen=True)
class Concluded:
    """The status fields an outcome writes, and what the metrics observe once it is written."""

    totals: Totals
    failing_since: str  # "" when the latest finished run that counts is a success
    entry: Mapping[str, Any]  # added to the run's history entry
    observation: Observation

    def status(self) -> dict[str, Any]:
        """The status fields, for the outcome's patch (None clears failingSince)."""
        return {"totals": self.totals.as_status(), "failingSince": self.failing_since or None}


def conclude(
    status: Mapping[str, Any], state: RunState, source: Source | None, namespace: str
) -> Concluded:
    """The DORA side of a finished run, from the status before it and the run's final state."""
    return conclude_for(status, state, environment_of(source, namespace), source, namespace)


def conclude_unparsed(status: Mapping[str, Any], state: RunState, namespace: str) -> Concluded:
    """For a run whose spec could not be read: counted where the DeployJob was counting."""
    environment = unparsed_environment(status.get("totals"), namespace)
    return conclude_for(status, state, environment, None, namespace)


def unparsed_environment(totals: Mapping[str, Any] | None, namespace: str) -> str:
    """The environment of a run whose spec cannot be read: where the DeployJob was counting
    (status.totals), else its namespace; its messages and history say the same."""
    counted = Totals.from_status(totals)
    return counted.environment if counted else namespace


def conclude_for(
    status: Mapping[str, Any],
    state: RunState,
    environment: str,
    source: Source | None,
    namespace: str,
) -> Concluded:
    phase = state.phase
    if phase is None or phase not in OUTCOMES:
        raise ValueError(f"run {state.run} has not finished (phase {phase})")
    outcome = OUTCOMES[phase]
    totals = Totals.from_status(status.get("totals"))
    if totals is None or totals.environment != environment:
        totals = Totals(environment, since=state.started_at or state.finished_at)
    totals = totals.add(outcome)

    failing_since = str(status.get("failingSince") or "")
    committed_at = source.committed_at if source else ""
    entry: dict[str, Any] = {"environment": environment}
    if committed_at:
        entry["committedAt"] = committed_at
    lead_time = restore = None
    if phase == Phase.SUCCEEDED:
        lead_time = seconds_between(committed_at, state.finished_at)
        if failing_since:
            entry["failingSince"] = failing_since
            restore = seconds_between(failing_since, state.finished_at)
        failing_since = ""
    elif phase == Phase.FAILED and not failing_since:
        failing_since = state.finished_at
    observation = Observation(
        namespace=namespace,
        environment=environment,
        outcome=outcome,
        duration=seconds_between(state.started_at, state.finished_at),
        lead_time=lead_time,
        time_to_restore=restore,
    )
    return Concluded(totals, failing_since, entry, observation)
