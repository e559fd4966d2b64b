"""The run state machine (pure): what a DeployJob's run should do next, and how it ends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from deploybell.api.deployjob import Source
from deploybell.deploy.health import Health, Status


class Phase(StrEnum):
    PENDING = "Pending"
    DEPLOYING = "Deploying"
    VERIFYING = "Verifying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


IN_FLIGHT = frozenset({Phase.PENDING, Phase.DEPLOYING, Phase.VERIFYING})


class Action(StrEnum):
    START = "start"  # begin a new run
    SUPERSEDE = "supersede"  # cancel the run in flight (Superseded), then begin a new run
    CANCEL = "cancel"  # cancel the run in flight (annotation)
    DELETE = "delete"  # the DeployJob is being deleted
    WATCH = "watch"  # a run is in flight: observe and decide
    IDLE = "idle"  # nothing to do until something changes


@dataclass(frozen=True)
class Trigger:
    """The inputs a run answers to: spec generation, redeploy token, last cancel token seen."""

    generation: int = 0
    redeploy: str = ""
    cancel: str = ""

    def as_status(self) -> dict[str, Any]:
        return {"generation": self.generation, "redeploy": self.redeploy, "cancel": self.cancel}

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Trigger:
        raw = raw or {}
        return cls(
            int(raw.get("generation") or 0),
            str(raw.get("redeploy") or ""),
            str(raw.get("cancel") or ""),
        )


@dataclass(frozen=True)
class RunState:
    """What status says about the latest run."""

    run: int = 0
    phase: Phase | None = None
    trigger: Trigger = field(default_factory=Trigger)
    started_at: str = ""
    finished_at: str = ""
    verifying_at: str = ""  # when the run last entered Verifying (its stability window)
    reason: str = ""
    message: str = ""
    revision: str = ""
    source: Source | None = None
    """spec.source as the run began, its environment resolved (for an unreadable spec, only the
    environment: deploy.dora.unparsed_environment); what every message of the run says, whatever
    the spec says later. None: not recorded (no run yet, or a status of an older version)."""

    @property
    def in_flight(self) -> bool:
        return self.phase in IN_FLIGHT

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RunState:
        status = status or {}
        phase = status.get("phase")
        return cls(
            run=int(status.get("run") or 0),
            phase=Phase(phase) if phase in {p.value for p in Phase} else None,
            trigger=Trigger.from_status(status.get("trigger")),
            started_at=str(status.get("startedAt") or ""),
            finished_at=str(status.get("finishedAt") or ""),
            verifying_at=str(status.get("verifyingAt") or ""),
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            revision=str(status.get("revision") or ""),
            source=Source.from_status(status.get("source")),
        )


def decide(state: RunState, desired: Trigger, deleting: bool) -> Action:
    """The next action, level-triggered: the same inputs always give the same answer."""
    if deleting:
        return Action.DELETE
    if state.in_flight and desired.cancel != state.trigger.cancel:
        return Action.CANCEL
    changed = (desired.generation, desired.redeploy) != (
        state.trigger.generation,
        state.trigger.redeploy,
    )
    if state.run == 0 or changed:
        return Action.SUPERSEDE if state.in_flight else Action.START
    return Action.WATCH if state.in_flight else Action.IDLE


def start(
    state: RunState, desired: Trigger, now: str, revision: str, source: Source | None = None
) -> RunState:
    return RunState(
        run=state.run + 1,
        phase=Phase.DEPLOYING,
        trigger=desired,
        started_at=now,
        reason="Deploying",
        message="applying the manifests",
        revision=revision,
        source=source,
    )


def finish(state: RunState, phase: Phase, reason: str, message: str, now: str) -> RunState:
    return replace(state, phase=phase, reason=reason, message=message, finished_at=now)


# --- the verdict on an in-flight run ------------------------------------------------------------


class Outcome(StrEnum):
    PROGRESSING = "progressing"
    HEALTHY = "healthy"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    message: str


def judge(
    healths: Sequence[tuple[str, Health]],
    pod_failures: Sequence[tuple[str, str]],
    elapsed: float,
    max_wait: float,
) -> Verdict:
    """Combine per-object health (described object, health) into one verdict for the run.

    `pod_failures` are (reason, sentence) for pods of the new revision stuck past the grace period.
    """
    for what, health in healths:
        if health.status == Status.FAILED:
            return Verdict(Outcome.FAILED, health.reason or "Failed", _sentence(what, health))
    if pod_failures:
        reason, first = pod_failures[0]
        more = f" (and {len(pod_failures) - 1} more)" if len(pod_failures) > 1 else ""
        return Verdict(Outcome.FAILED, reason, first + more)
    pending = [(what, h) for what, h in healths if h.status != Status.CURRENT]
    if not pending:
        return Verdict(Outcome.HEALTHY, "RolloutComplete", f"all {len(healths)} objects are ready")
    if elapsed >= max_wait:
        what, health = pending[0]
        return Verdict(
            Outcome.FAILED,
            "MaxWaitExceeded",
            f"not ready after maxWaitSeconds={max_wait:.0f}: {_sentence(what, health)}",
        )
    what, health = pending[0]
    return Verdict(Outcome.PROGRESSING, "Progressing", _sentence(what, health))


def _sentence(what: str, health: Health) -> str:
    message = health.message or health.status.value
    # Health messages start with "Kind name"; `what` may add the namespace. Name it once.
    kind_and_name = what.split(" in namespace ")[0]
    return message if kind_and_name in message else f"{what}: {message}"


def conditions(
    state: RunState,
    generation: int,
    now: str,
    previous: Sequence[Mapping[str, Any]] = (),
    delivered: tuple[bool | None, str, str] | None = None,
) -> list[dict[str, Any]]:
    """kstatus conditions (Ready, Reconciling, Stalled) derived from the run state, and
    NotificationsDelivered from `delivered` (status, None for Unknown; reason, message)."""
    phase = state.phase
    ready = phase == Phase.SUCCEEDED
    reconciling = phase in IN_FLIGHT
    stalled = phase == Phase.FAILED
    # Ready always explains itself; Reconciling and Stalled only while they are True.
    wanted: list[tuple[str, bool | None, str, str]] = [
        ("Ready", ready, state.reason if phase else "NoRun", state.message),
        (
            "Reconciling",
            reconciling,
            state.reason if reconciling else "Idle",
            state.message if reconciling else "",
        ),
        (
            "Stalled",
            stalled,
            state.reason if stalled else "NotStalled",
            state.message if stalled else "",
        ),
    ]
    if delivered is not None:
        wanted.append(("NotificationsDelivered", *delivered))
    before = {c.get("type"): c for c in previous}
    out = []
    for type_, flag, reason, message in wanted:
        status = "Unknown" if flag is None else "True" if flag else "False"
        old = before.get(type_) or {}
        changed_at = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append(
            {
                "type": type_,
                "status": status,
                "reason": reason or type_,
                "message": message[:1000],
                "observedGeneration": generation,
                "lastTransitionTime": changed_at or now,
            }
        )
    return out


def history_entry(state: RunState) -> dict[str, Any]:
    source = {"source": state.source.as_status()} if state.source else {}
    return {
        "run": state.run,
        "phase": state.phase.value if state.phase else "",
        "reason": state.reason,
        "message": state.message[:500],
        "startedAt": state.started_at,
        "finishedAt": state.finished_at,
        "revision": state.revision,
        **source,
    }


def push_history(
    history: Sequence[Mapping[str, Any]],
    state: RunState,
    limit: int,
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Newest first, one entry per run, at most `limit`; `extra` adds fields to the new entry."""
    kept = [dict(h) for h in history if h.get("run") != state.run]
    return [{**history_entry(state), **(extra or {})}, *kept][:limit]
