"""A DeployJob's status as one typed object: read once from the object, written in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploybell.deploy.run import RunState
from deploybell.notify import ledger

Entry = dict[str, Any]


@dataclass
class JobStatus:
    """What deploybell keeps in a DeployJob's status (the CRD documents each field)."""

    state: RunState = field(default_factory=RunState)
    """The latest run: number, phase, trigger, times, reason, message, revision, source."""
    resources: list[Entry] = field(default_factory=list)
    """The latest run's objects and their health."""
    history: list[Entry] = field(default_factory=list)
    """Finished runs, newest first."""
    notifications: list[Entry] = field(default_factory=list)
    """The delivery ledger (notify.ledger)."""
    conditions: list[Entry] = field(default_factory=list)
    rollback: Entry = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    diagnosis: Entry = field(default_factory=dict)
    canceled_by: str = ""
    cluster: str = ""
    """The target cluster of the latest run (spec.cluster); "" for the operator's own."""
    totals: Entry = field(default_factory=dict)
    """Finished runs per outcome for the current environment (deploy.dora: the DORA counters)."""
    failing_since: str = ""
    """When the first failure after the last success ended (deploy.dora: time to restore)."""

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> JobStatus:
        raw = raw or {}
        return cls(
            state=RunState.from_status(raw),
            resources=[dict(r) for r in raw.get("resources") or []],
            history=[dict(h) for h in raw.get("history") or []],
            notifications=ledger.migrate(raw.get("notifications") or []),
            conditions=[dict(c) for c in raw.get("conditions") or []],
            rollback=dict(raw.get("rollback") or {}),
            images=[str(i) for i in raw.get("images") or []],
            diagnosis=dict(raw.get("diagnosis") or {}),
            canceled_by=str(raw.get("canceledBy") or ""),
            cluster=str(raw.get("cluster") or ""),
            totals=dict(raw.get("totals") or {}),
            failing_since=str(raw.get("failingSince") or ""),
        )

    def full(self, generation: int) -> dict[str, Any]:
        """The whole status, as a merge patch (None removes a field)."""
        s = self.state
        return {
            "observedGeneration": generation,
            "phase": s.phase.value if s.phase else None,
            "run": s.run,
            "trigger": s.trigger.as_status(),
            "startedAt": s.started_at or None,
            "finishedAt": s.finished_at if not s.in_flight else None,
            "verifyingAt": s.verifying_at or None,
            "reason": s.reason,
            "message": s.message[:1000],
            "revision": s.revision,
            "source": s.source.as_patch() if s.source else None,
            "canceledBy": self.canceled_by or None,
            "conditions": self.conditions,
            "resources": self.resources,
            "history": self.history,
            "notifications": self.notifications,
            "rollback": self.rollback or None,
            "images": self.images,
            "diagnosis": self.diagnosis or None,
            "cluster": self.cluster or None,
            "totals": self.totals or None,
            "failingSince": self.failing_since or None,
        }

    def deliveries(self) -> dict[str, Any]:
        """Only what delivery moves: the ledger and the conditions derived from it."""
        return {"notifications": self.notifications, "conditions": self.conditions}
