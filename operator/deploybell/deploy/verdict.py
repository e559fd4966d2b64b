"""The pieces of a run's verdict that are clocks and comparisons (pure): stale cache copies,
pods stuck past the grace period, resources whose health moved, and when to look again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deploybell.deploy.health import Health, PodProblem, Status, evaluate
from deploybell.deploy.live import Timers
from deploybell.deploy.manifests import ObjectRef


def health_of(
    ref: ObjectRef, obj: Mapping[str, Any] | None, applied: Mapping[ObjectRef, int]
) -> Health:
    """The object's health, unless the watch has not yet seen the generation we applied."""
    seen = int(((obj or {}).get("metadata") or {}).get("generation") or 0)
    if obj is not None and seen < applied.get(ref, 0):
        return Health(
            Status.IN_PROGRESS,
            f"{ref.kind} {ref.name}: waiting to observe the applied generation {applied[ref]}",
        )
    return evaluate(obj)


def stuck_pods(
    problems: Mapping[str, PodProblem], timers: Timers, grace: float, now: float
) -> list[PodProblem]:
    """Pod problems seen for longer than the grace period (the first sighting starts a clock)."""
    seen = timers.problem_seen
    for key in [k for k in seen if k not in problems]:
        del seen[key]
    return [p for key, p in problems.items() if now - seen.setdefault(key, now) >= grace]


def fresh_resources(
    refs: Sequence[ObjectRef], healths: Sequence[Health], before: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """status.resources now, and whether an object's status (not just its message) moved."""
    fresh = [
        {**ref.as_status(), "status": h.status.value, "message": h.message[:300]}
        for ref, h in zip(refs, healths, strict=True)
    ]
    return fresh, [r["status"] for r in fresh] != [r.get("status") for r in before]


def next_wake(max_wait: float, timers: Timers, grace: float, polling: bool, now: float) -> float:
    """Seconds until the run needs a look without any event: maxWait, a stuck pod's grace, or
    a poll of kinds no watch covers."""
    wake = max(max_wait - (now - timers.started), 0.5)
    if timers.problem_seen:
        oldest = min(timers.problem_seen.values())
        wake = min(wake, max(grace - (now - oldest), 0.2) + 0.1)
    return min(wake, 2.0) if polling else wake
