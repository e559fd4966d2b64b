"""The DeployJob as the watch last saw it, and the in-memory clocks of a run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deploybell.api.constants import ANNOTATION_CANCEL, ANNOTATION_REDEPLOY
from deploybell.api.deployjob import Source, parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.deploy.run import RunState, Trigger


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def monotonic_since(stamp: str) -> float:
    """The monotonic time at which a status timestamp happened (now, if it cannot be read)."""
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return time.monotonic()
    age = max((datetime.now(UTC) - then).total_seconds(), 0.0)
    return time.monotonic() - age


@dataclass(frozen=True)
class LiveJob:
    """The DeployJob as last seen by the watch."""

    namespace: str
    name: str
    uid: str
    generation: int
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    deleting: bool
    finalizers: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def desired(self) -> Trigger:
        return Trigger(
            self.generation,
            self.annotations.get(ANNOTATION_REDEPLOY, ""),
            self.annotations.get(ANNOTATION_CANCEL, ""),
        )

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> LiveJob:
        meta = body.get("metadata") or {}
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            annotations=dict(meta.get("annotations") or {}),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
        )


@dataclass
class Timers:
    """In-memory clocks of the run in flight; after a restart they start again (more patient)."""

    started: float = field(default_factory=time.monotonic)
    verifying_since: float | None = None
    restart_baseline: int = 0
    problem_seen: dict[str, float] = field(default_factory=dict)


def legacy_source(state: RunState, live: LiveJob) -> RunState:
    """A run recorded by an older version, without its source: the spec's, if the spec is still
    the run's (same generation), so its pending messages say what the run deployed."""
    if state.run == 0 or state.source is not None or live.generation != state.trigger.generation:
        return state
    try:
        spec = parse_deployjob(live.spec)
    except SpecError:
        return state
    return replace(state, source=(spec.source or Source()).resolved(live.namespace))
