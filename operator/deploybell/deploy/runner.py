"""One DeployJob's runs: apply, observe, judge, persist — I/O through injected ports.

The decisions live in `run` (pure); this module sequences them and keeps the few in-memory
timers (grace periods, stability window) that need not survive a restart: after a restart they
start again, which only ever makes the operator more patient, never wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from deploybell.api.constants import ANNOTATION_CANCEL, ANNOTATION_REDEPLOY
from deploybell.api.deployjob import DeployJobSpec, parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.deploy import run as runs
from deploybell.deploy.apply import Applier, ApplyFailure
from deploybell.deploy.health import Status, evaluate
from deploybell.deploy.manifests import ObjectRef, digest
from deploybell.deploy.observe import Observer
from deploybell.deploy.run import Action, Phase, RunState, Trigger
from deploybell.notify import ledger


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobPorts(Protocol):
    """What a runner needs from the outside world, for one DeployJob."""

    async def patch_status(self, status: Mapping[str, Any]) -> None: ...
    async def record_event(self, warning: bool, reason: str, message: str) -> None: ...
    async def deliver(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...


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
        )


@dataclass
class Timers:
    """In-memory clocks of the run in flight."""

    started: float = field(default_factory=time.monotonic)
    verifying_since: float | None = None
    restart_baseline: int = 0
    problem_seen: dict[str, float] = field(default_factory=dict)


class JobRunner:
    """Drives the runs of one DeployJob; `step` is called on every change and timer."""

    def __init__(
        self,
        live: LiveJob,
        ports: JobPorts,
        applier: Applier,
        observer: Observer,
        *,
        failfast_grace: float = 10.0,
        history_limit: int = 10,
    ) -> None:
        self.ports = ports
        self.applier = applier
        self.observer = observer
        self.failfast_grace = failfast_grace
        self.history_limit = history_limit
        status = live.status
        self.state = RunState.from_status(status)
        self.resources: list[dict[str, Any]] = [dict(r) for r in status.get("resources") or []]
        self.history: list[dict[str, Any]] = [dict(h) for h in status.get("history") or []]
        self.notifications: list[dict[str, Any]] = [
            dict(n) for n in status.get("notifications") or []
        ]
        self.conditions: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]
        self.rollback: dict[str, Any] = dict(status.get("rollback") or {})
        self.canceled_by = str(status.get("canceledBy") or "")
        self.timers = Timers()
        self.applied = False  # applied in this process: a resumed run re-applies (idempotent)
        self.spec: DeployJobSpec | None = None

    # --- the loop body ------------------------------------------------------------------------

    async def step(self, live: LiveJob) -> float | None:
        """Do what the job needs now; return seconds until a timer needs a look (None: never)."""
        action = runs.decide(self.state, live.desired, live.deleting)
        if action == Action.DELETE:
            await self.on_delete(live)
            return None
        if action == Action.IDLE:
            await self.flush_notifications()
            return self.retry_delay()
        if action in (Action.CANCEL, Action.SUPERSEDE):
            await self.cancel(live, action)
            if action == Action.CANCEL:
                return self.retry_delay()
        if action in (Action.START, Action.SUPERSEDE):
            await self.start(live)
            if not self.state.in_flight:
                return self.retry_delay()
        return await self.watch(live)

    # --- transitions --------------------------------------------------------------------------

    async def start(self, live: LiveJob) -> None:
        try:
            self.spec = parse_deployjob(live.spec)
        except SpecError as e:
            self.spec = None
            await self.begin(live, revision="")
            await self.fail("InvalidSpec", str(e), live)
            return
        await self.begin(live, revision=digest(self.spec.manifests))
        await self.apply(live)

    async def begin(self, live: LiveJob, revision: str) -> None:
        self.state = runs.start(self.state, live.desired, utcnow(), revision)
        self.timers = Timers()
        self.rollback = {}
        self.canceled_by = ""
        self.notifications = ledger.add_event(
            self.notifications, self.state.run, "start", self.subscribers("start"), utcnow()
        )
        await self.persist(live)
        await self.ports.record_event(False, "RunStarted", f"run {self.state.run} started")
        await self.flush_notifications()

    async def apply(self, live: LiveJob) -> None:
        assert self.spec is not None
        try:
            result = await self.applier.apply(live.namespace, live.name, self.spec, self.state.run)
        except ApplyFailure as e:
            await self.fail(e.reason, e.message, live)
            return
        self.applied = True
        old = {ObjectRef.from_status(r) for r in self.resources}
        if self.spec.prune:
            await self.applier.prune(live.namespace, self.spec, old - set(result.refs))
        self.state = replace(self.state, revision=result.revision)
        self.resources = [
            {**ref.as_status(), "status": Status.IN_PROGRESS.value, "message": "applied"}
            for ref in result.refs
        ]
        self.state = replace(
            self.state,
            reason="Progressing",
            message=f"applied {len(result.refs)} objects, waiting for rollout",
        )
        await self.persist(live)

    async def watch(self, live: LiveJob) -> float | None:
        if self.spec is None:
            try:
                self.spec = parse_deployjob(live.spec)
            except SpecError as e:
                await self.fail("InvalidSpec", str(e), live)
                return None
        if not self.applied and not self.rollback:
            await self.apply(live)  # resumed after a restart: SSA is idempotent
            if not self.state.in_flight:
                return self.retry_delay()
        refs = [ObjectRef.from_status(r) for r in self.resources]
        observation = await self.observer.observe(
            live.namespace, live.name, refs, self.spec.service_account_name
        )
        healths = [(ref.describe(), evaluate(observation.objects.get(ref))) for ref in refs]
        failures = self.stuck_pods(observation.pod_problems)
        elapsed = time.monotonic() - self.timers.started
        verdict = runs.judge(healths, failures, elapsed, self.spec.max_wait_seconds)
        changed = self.update_resources(refs, healths)
        if verdict.outcome == runs.Outcome.FAILED:
            await self.fail(verdict.reason, verdict.message, live)
            return self.retry_delay()
        if verdict.outcome == runs.Outcome.HEALTHY:
            return await self.healthy(live, observation.restarts, observation.all_pods_ready)
        if self.state.phase == Phase.VERIFYING:
            self.timers.verifying_since = None
            self.state = replace(self.state, phase=Phase.DEPLOYING)
            changed = True
        self.state = replace(self.state, reason="Progressing", message=verdict.message)
        if changed:
            await self.persist(live)
        return self.next_wake(observation.needs_polling)

    async def healthy(self, live: LiveJob, restarts: int, pods_ready: bool) -> float | None:
        assert self.spec is not None
        window = self.spec.stability_seconds
        now = time.monotonic()
        if self.rollback:
            await self.rolled_back(live)
            return self.retry_delay()
        if window > 0:
            since = self.timers.verifying_since
            reset = since is not None and (
                restarts > self.timers.restart_baseline or not pods_ready
            )
            if since is None or reset:
                self.timers.verifying_since = now
                self.timers.restart_baseline = restarts
                self.state = replace(
                    self.state,
                    phase=Phase.VERIFYING,
                    reason="Verifying",
                    message=f"rolled out; must stay healthy for {window}s"
                    + (" (clock reset: a pod restarted or went unready)" if reset else ""),
                )
                await self.persist(live)
                return float(window)
            if now - since < window:
                return window - (now - since)
        took = time.monotonic() - self.timers.started
        message = f"all {len(self.resources)} objects rolled out in {took:.0f}s"
        await self.conclude(live, Phase.SUCCEEDED, "RolloutComplete", message, "success")
        await self.applier.save_last_good(
            live.namespace, live.name, live.uid, self.spec, self.state.run, self.state.revision
        )
        return self.retry_delay()

    async def fail(self, reason: str, message: str, live: LiveJob) -> None:
        spec = self.spec
        if spec is not None and spec.rollback_on_failure and not self.rollback:
            snapshot = await self.applier.load_last_good(live.namespace, live.name)
            if snapshot is not None:
                await self.roll_back(live, snapshot, reason, message)
                return
        await self.conclude(live, Phase.FAILED, reason, message, "failure")

    async def roll_back(self, live: LiveJob, snapshot: Any, reason: str, message: str) -> None:
        assert self.spec is not None
        self.rollback = {
            "toRun": snapshot.run,
            "revision": snapshot.revision,
            "reason": reason,
            "message": message,
            "phase": "RollingBack",
        }
        await self.ports.record_event(
            True,
            "RollingBack",
            f"run {self.state.run} failed ({reason}); rolling back to "
            f"run {snapshot.run} ({snapshot.revision})",
        )
        try:
            refs = await self.applier.apply_snapshot(
                live.namespace, live.name, snapshot, self.spec, self.state.run
            )
        except ApplyFailure as e:
            await self.conclude(
                live,
                Phase.FAILED,
                reason,
                f"{message}; rollback to run {snapshot.run} failed: {e.message}",
                "failure",
            )
            return
        self.resources = [
            {**r.as_status(), "status": Status.IN_PROGRESS.value, "message": "rolled back"}
            for r in refs
        ]
        self.timers = Timers()
        self.state = replace(
            self.state,
            reason="RollingBack",
            message=f"{message}; rolling back to run {snapshot.run}",
        )
        await self.persist(live)

    async def rolled_back(self, live: LiveJob) -> None:
        rb = self.rollback
        self.rollback = {**rb, "phase": "RolledBack"}
        message = f"{rb['message']}; rolled back to run {rb['toRun']} ({rb['revision']})"
        await self.conclude(live, Phase.FAILED, str(rb["reason"]), message, "failure")

    async def cancel(self, live: LiveJob, action: Action) -> None:
        if action == Action.SUPERSEDE:
            reason, message = (
                "Superseded",
                (
                    f"superseded by a new run for generation {live.generation}"
                    if live.generation != self.state.trigger.generation
                    else "superseded by a redeploy request"
                ),
            )
        else:
            cancel_value = live.desired.cancel
            reason, message = (
                "Canceled",
                f"canceled by annotation {ANNOTATION_CANCEL}={cancel_value!r}",
            )
            self.canceled_by = cancel_value
            self.state = replace(
                self.state, trigger=replace(self.state.trigger, cancel=cancel_value)
            )
        await self.conclude(live, Phase.CANCELED, reason, message, "cancel")

    async def on_delete(self, live: LiveJob) -> None:
        if self.state.in_flight:
            await self.conclude(
                live,
                Phase.CANCELED,
                "Deleted",
                "the DeployJob was deleted during the run",
                "cancel",
            )
        spec = self.spec
        if spec is None:
            try:
                spec = parse_deployjob(live.spec)
            except SpecError:
                spec = None
        if spec is not None and spec.prune:
            await self.applier.prune(
                live.namespace, spec, {ObjectRef.from_status(r) for r in self.resources}
            )

    async def conclude(
        self, live: LiveJob, phase: Phase, reason: str, message: str, event: str
    ) -> None:
        self.state = runs.finish(self.state, phase, reason, message, utcnow())
        self.history = runs.push_history(self.history, self.state, self.history_limit)
        self.notifications = ledger.add_event(
            self.notifications, self.state.run, event, self.subscribers(event), utcnow()
        )
        await self.persist(live)
        await self.ports.record_event(
            phase != Phase.SUCCEEDED, f"Run{phase.value}", f"run {self.state.run}: {message}"
        )
        await self.flush_notifications()

    # --- helpers ------------------------------------------------------------------------------

    def subscribers(self, event: str) -> tuple[str, ...]:
        return self.spec.subscribers(event) if self.spec else ()

    def stuck_pods(self, problems: Mapping[str, tuple[str, str]]) -> list[tuple[str, str]]:
        """(reason, sentence) of pod problems seen for longer than the grace period."""
        now = time.monotonic()
        seen = self.timers.problem_seen
        for key in list(seen):
            if key not in problems:
                del seen[key]
        stuck = []
        for key, problem in problems.items():
            first = seen.setdefault(key, now)
            if now - first >= self.failfast_grace:
                stuck.append(problem)
        return stuck

    def update_resources(
        self, refs: Sequence[ObjectRef], healths: Sequence[tuple[str, Any]]
    ) -> bool:
        """Refresh status.resources; True when an object's status (not just its message) moved."""
        fresh = [
            {**ref.as_status(), "status": h.status.value, "message": h.message[:300]}
            for ref, (_, h) in zip(refs, healths, strict=True)
        ]
        moved = [r["status"] for r in fresh] != [r.get("status") for r in self.resources]
        self.resources = fresh
        return moved

    def next_wake(self, polling: bool) -> float:
        assert self.spec is not None
        left = self.spec.max_wait_seconds - (time.monotonic() - self.timers.started)
        wake = max(left, 0.5)
        if self.timers.problem_seen:
            oldest = min(self.timers.problem_seen.values())
            wake = min(wake, max(self.failfast_grace - (time.monotonic() - oldest), 0.2) + 0.1)
        if polling:
            wake = min(wake, 2.0)
        return wake

    def retry_delay(self) -> float | None:
        """Pending notifications (e.g. a Notification not created yet) are retried on a timer."""
        return 10.0 if ledger.pending(self.notifications) else None

    async def flush_notifications(self) -> None:
        if not ledger.pending(self.notifications):
            return
        before = self.notifications
        self.notifications = await self.ports.deliver(self.notifications)
        if self.notifications != before:
            await self.ports.patch_status({"notifications": self.notifications})

    async def persist(self, live: LiveJob) -> None:
        """The one place a DeployJob's status is written."""
        now = utcnow()
        self.conditions = runs.conditions(self.state, live.generation, now, self.conditions)
        s = self.state
        await self.ports.patch_status(
            {
                "observedGeneration": live.generation,
                "phase": s.phase.value if s.phase else None,
                "run": s.run,
                "trigger": s.trigger.as_status(),
                "startedAt": s.started_at or None,
                "finishedAt": s.finished_at if not s.in_flight else None,
                "reason": s.reason,
                "message": s.message[:1000],
                "revision": s.revision,
                "canceledBy": self.canceled_by or None,
                "conditions": self.conditions,
                "resources": self.resources,
                "history": self.history,
                "notifications": self.notifications,
                "rollback": self.rollback or None,
            }
        )
