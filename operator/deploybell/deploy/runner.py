"""One DeployJob's runs: apply, observe, judge, persist, notify — I/O through injected ports.

The decisions live in `run` (pure); this module sequences them. It is the only writer of the
DeployJob's status: the outbox delivers in the background and hands results back through
`sync_notifications`, which persists them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from deploybell.api.constants import ANNOTATION_CANCEL
from deploybell.api.deployjob import DeployJobSpec, parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.deploy import report
from deploybell.deploy import run as runs
from deploybell.deploy.apply import Applier, ApplyFailure, Snapshot
from deploybell.deploy.health import Health, PodProblem, Status, evaluate
from deploybell.deploy.live import LiveJob, Timers, monotonic_since, utcnow
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.observe import Observation, Observer
from deploybell.deploy.run import Action, Phase, RunState
from deploybell.deploy.runlog import RunLog
from deploybell.notify import ledger
from deploybell.notify.model import Message
from deploybell.notify.outbox import Outbox, Report

__all__ = ["JobPorts", "JobRunner", "LiveJob", "utcnow"]


class JobPorts(Protocol):
    """What a runner needs from the outside world besides the cluster, for one DeployJob."""

    async def patch_status(self, status: Mapping[str, Any]) -> None: ...
    async def record_event(self, warning: bool, reason: str, message: str) -> None: ...
    def run_finished(self, phase: str, seconds: float | None) -> None: ...


class JobRunner:
    """Drives the runs of one DeployJob; `step` is called on every change and timer."""

    def __init__(
        self,
        live: LiveJob,
        ports: JobPorts,
        applier: Applier,
        observer: Observer,
        outbox: Outbox,
        *,
        presentation: report.Presentation | None = None,
        failfast_grace: float = 10.0,
        history_limit: int = 10,
    ) -> None:
        self.ports, self.applier, self.observer, self.outbox = ports, applier, observer, outbox
        self.log = RunLog(live.namespace, live.name)
        self.presentation = presentation or report.Presentation()
        self.failfast_grace = failfast_grace
        self.history_limit = history_limit
        status = live.status
        self.live = live
        self.state = RunState.from_status(status)
        self.resources: list[dict[str, Any]] = [dict(r) for r in status.get("resources") or []]
        self.history: list[dict[str, Any]] = [dict(h) for h in status.get("history") or []]
        self.notifications = [dict(n) for n in status.get("notifications") or []]
        self.conditions: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]
        self.rollback: dict[str, Any] = dict(status.get("rollback") or {})
        self.images: list[str] = list(status.get("images") or [])
        self.diagnosis: dict[str, Any] = dict(status.get("diagnosis") or {})
        self.canceled_by = str(status.get("canceledBy") or "")
        self.timers = Timers()
        if self.state.in_flight:  # resumed: maxWaitSeconds counts from the run's real start
            self.timers.started = monotonic_since(self.state.started_at)
        self.applied = False  # applied in this process: a resumed run re-applies (idempotent)
        self.generations: dict[ObjectRef, int] = {}  # as applied; older cached copies are stale
        self.spec: DeployJobSpec | None = None
        self.notes: list[Report] = []  # Events to post after the next status write

    @property
    def idle(self) -> bool:
        """No run in flight, nothing being sent and nothing left to send: the task may end."""
        return (
            not self.state.in_flight
            and not self.outbox.busy
            and not any(e.get("state") == ledger.Delivery.PENDING.value for e in self.notifications)
        )

    # --- the loop body ------------------------------------------------------------------------

    async def step(self, live: LiveJob) -> float | None:
        """Do what the job needs now; return seconds until a timer needs a look (None: never)."""
        self.live = live
        await self.outbox.settle()  # sends of one event finish together: one status write
        await self.sync_notifications()
        delay = await self.act(live)
        await self.sync_notifications()
        retry = self.outbox.next_wake(self.notifications)
        waits = [w for w in (delay, retry) if w is not None]
        return min(waits) if waits else None

    async def act(self, live: LiveJob) -> float | None:
        action = runs.decide(self.state, live.desired, live.deleting)
        if action == Action.DELETE:
            await self.on_delete(live)
            return None
        if action == Action.IDLE:
            return None
        if action in (Action.CANCEL, Action.SUPERSEDE):
            await self.cancel(live, action)
            if action == Action.CANCEL:
                return None
        if action in (Action.START, Action.SUPERSEDE):
            await self.start(live)
            if not self.state.in_flight:
                return None
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
        await self.begin(live, revision="")
        await self.apply(live)

    async def begin(self, live: LiveJob, revision: str) -> None:
        """A new run in memory; the next persist (after the apply, or the failure) records it
        together with its start entry, before anything is sent: one status write, not two.
        A crash before that write leaves no trace, so the run starts afresh with that number."""
        self.state = runs.start(self.state, live.desired, utcnow(), revision)
        self.timers = Timers()
        self.rollback, self.diagnosis, self.canceled_by = {}, {}, ""
        self.add_event("start")
        trigger = self.state.trigger
        self.log.info(
            self.state.run,
            "run-started",
            f"started for generation {trigger.generation}",
            generation=trigger.generation,
            redeploy=trigger.redeploy or None,
        )

    async def apply(self, live: LiveJob) -> None:
        assert self.spec is not None
        try:
            result = await self.applier.apply(live.namespace, live.name, self.spec, self.state.run)
        except ApplyFailure as e:
            await self.fail(e.reason, e.message, live)
            return
        self.applied = True
        self.generations = result.generations
        if self.spec.prune:
            old = {ObjectRef.from_status(r) for r in self.resources}
            await self.applier.prune(live.namespace, self.spec, old - set(result.refs))
        self.images = result.images
        self.resources = [
            {**ref.as_status(), "status": Status.IN_PROGRESS.value, "message": "applied"}
            for ref in result.refs
        ]
        message = f"applied {len(result.refs)} objects, waiting for the rollout"
        self.log.info(
            self.state.run, "applied", message, objects=len(result.refs), revision=result.revision
        )
        self.state = replace(
            self.state, revision=result.revision, reason="Progressing", message=message
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
                return None
        refs = [ObjectRef.from_status(r) for r in self.resources]
        await self.observer.follow(refs)
        observation = await self.observer.observe(
            live.namespace, live.name, refs, self.spec.service_account_name
        )
        healths = [(ref.describe(), self.health_of(ref, observation)) for ref in refs]
        stuck = self.stuck_pods(observation.pod_problems)
        elapsed = time.monotonic() - self.timers.started
        verdict = runs.judge(
            healths, [(p.reason, p.sentence()) for p in stuck], elapsed, self.spec.max_wait_seconds
        )
        changed = self.update_resources(refs, [h for _, h in healths])
        if changed:
            self.log.info(
                self.state.run,
                "verdict",
                f"{verdict.outcome.value}: {verdict.message}",
                outcome=verdict.outcome.value,
                reason=verdict.reason,
            )
        if verdict.outcome == runs.Outcome.FAILED:
            await self.diagnose(live, refs, healths, stuck, observation)
            await self.fail(verdict.reason, verdict.message, live)
            return None
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
        if self.rollback:
            await self.rolled_back(live)
            return None
        window = self.spec.stability_seconds
        now = time.monotonic()
        if window > 0:
            since = self.timers.verifying_since
            reset = since is not None and (
                restarts > self.timers.restart_baseline or not pods_ready
            )
            if since is None or reset:
                self.timers.verifying_since = now
                self.timers.restart_baseline = restarts
                note = " (clock reset: a pod restarted or went unready)" if reset else ""
                self.state = replace(
                    self.state,
                    phase=Phase.VERIFYING,
                    reason="Verifying",
                    message=f"rolled out; must stay healthy for {window}s{note}",
                )
                self.log.info(self.state.run, "verifying", self.state.message, seconds=window)
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
        return None

    async def diagnose(
        self,
        live: LiveJob,
        refs: Sequence[ObjectRef],
        healths: Sequence[tuple[str, Health]],
        stuck: Sequence[PodProblem],
        observation: Observation,
    ) -> None:
        """Record the failing pods and the latest Warning Events of the failing objects."""
        failing = {
            ref.name
            for ref, (_, h) in zip(refs, healths, strict=True)
            if h.status != Status.CURRENT
        }
        problems = list(stuck) or list(observation.pod_problems.values())
        failing |= {p.pod for p in problems}
        warnings = await self.observer.warnings(live.namespace, failing)
        self.diagnosis = report.diagnosis(problems, warnings)

    async def fail(self, reason: str, message: str, live: LiveJob) -> None:
        spec = self.spec
        if spec is not None and spec.rollback_on_failure and not self.rollback:
            snapshot = await self.applier.load_last_good(live.namespace, live.name, spec)
            if snapshot is not None:
                await self.roll_back(live, snapshot, reason, message)
                return
        await self.conclude(live, Phase.FAILED, reason, message, "failure")

    async def roll_back(self, live: LiveJob, snapshot: Snapshot, reason: str, message: str) -> None:
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
            generations = await self.applier.apply_snapshot(
                live.namespace, live.name, snapshot, self.spec, self.state.run
            )
        except ApplyFailure as e:
            self.rollback["phase"] = "RollbackFailed"
            await self.conclude(
                live,
                Phase.FAILED,
                reason,
                f"{message}; rollback to run {snapshot.run} failed: {e.message}",
                "failure",
            )
            return
        self.generations = generations
        self.resources = [
            {**r.as_status(), "status": Status.IN_PROGRESS.value, "message": "rolled back"}
            for r in generations
        ]
        self.timers = Timers()
        self.log.warning(
            self.state.run,
            "rolling-back",
            f"{reason}; rolling back to run {snapshot.run}",
            to_run=snapshot.run,
            reason=reason,
        )
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
            reason = "Superseded"
            message = (
                f"superseded by a new run for generation {live.generation}"
                if live.generation != self.state.trigger.generation
                else "superseded by a redeploy request"
            )
        else:
            value = live.desired.cancel
            reason, message = "Canceled", f"canceled by annotation {ANNOTATION_CANCEL}={value!r}"
            self.canceled_by = value
            self.state = replace(self.state, trigger=replace(self.state.trigger, cancel=value))
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
            refs = {ObjectRef.from_status(r) for r in self.resources}
            await self.applier.prune(live.namespace, spec, refs)

    async def internal_error(self, live: LiveJob, detail: str) -> float | None:
        """An unexpected error: end the run in flight as Failed, saying so; no hot loop."""
        if self.state.in_flight:
            message = f"deploybell hit an unexpected error: {detail[:300]}"
            await self.conclude(live, Phase.FAILED, "InternalError", message, "failure")
        return 60.0

    async def conclude(
        self, live: LiveJob, phase: Phase, reason: str, message: str, event: str
    ) -> None:
        self.state = runs.finish(self.state, phase, reason, message, utcnow())
        log = self.log.info if phase == Phase.SUCCEEDED else self.log.warning
        log(
            self.state.run,
            "run-finished",
            f"{phase.value} ({reason}): {message}",
            phase=phase.value,
            reason=reason,
        )
        await self.observer.unfollow()
        self.history = runs.push_history(self.history, self.state, self.history_limit)
        self.add_event(event)
        await self.persist(live)
        if phase != Phase.SUCCEEDED:  # a success is said by status alone: no Event, one write less
            await self.ports.record_event(
                True, f"Run{phase.value}", f"run {self.state.run}: {message}"
            )
        started = monotonic_since(self.state.started_at) if self.state.started_at else None
        self.ports.run_finished(phase.value, time.monotonic() - started if started else None)

    # --- notifications ------------------------------------------------------------------------

    def add_event(self, event: str) -> None:
        subscribers = self.spec.subscribers(event) if self.spec else ()
        added = ledger.add_event(self.notifications, self.state.run, event, subscribers, utcnow())
        # Expanded per recipient, or noted as waiting for its Notification, in the same write
        # that records the event; the Events about it follow that write.
        self.notifications, notes = self.outbox.resolve(added, datetime.now(UTC))
        self.notes += notes

    def message_for(self, entry: Mapping[str, Any]) -> Message:
        facts = report.RunFacts(
            self.live.namespace,
            self.live.name,
            self.state,
            self.history,
            self.resources,
            self.images,
            self.diagnosis,
            self.rollback,
            self.spec.source if self.spec else None,
        )
        return report.message_for(entry, facts, self.presentation)

    async def sync_notifications(self) -> None:
        """Hand due entries to the outbox, record what it finished, persist if anything moved."""
        before = self.notifications
        self.notifications, reports = self.outbox.pump(self.notifications, self.message_for)
        reports, self.notes = self.notes + reports, []
        for item in reports:
            await self.ports.record_event(item.warning, item.reason, item.message)
        if self.notifications != before:
            self.conditions = self.all_conditions(utcnow())
            await self.ports.patch_status(
                {"notifications": self.notifications, "conditions": self.conditions}
            )

    async def drain_notifications(self, seconds: float) -> None:
        """Give sends in flight a bounded time to finish, then record them."""
        await self.sync_notifications()
        await self.outbox.drain(seconds)
        await self.sync_notifications()

    # --- helpers ------------------------------------------------------------------------------

    def health_of(self, ref: ObjectRef, observation: Observation) -> Health:
        """The object's health, unless the watch has not yet seen the change we applied."""
        obj = observation.objects.get(ref)
        seen = int(((obj or {}).get("metadata") or {}).get("generation") or 0)
        if obj is not None and seen < self.generations.get(ref, 0):
            return Health(
                Status.IN_PROGRESS,
                f"{ref.kind} {ref.name}: waiting to observe the "
                f"applied generation {self.generations[ref]}",
            )
        return evaluate(obj)

    def stuck_pods(self, problems: Mapping[str, PodProblem]) -> list[PodProblem]:
        """Pod problems seen for longer than the grace period."""
        now = time.monotonic()
        seen = self.timers.problem_seen
        for key in [k for k in seen if k not in problems]:
            del seen[key]
        return [
            p
            for key, p in problems.items()
            if now - seen.setdefault(key, now) >= self.failfast_grace
        ]

    def update_resources(self, refs: Sequence[ObjectRef], healths: Sequence[Health]) -> bool:
        """Refresh status.resources; True when an object's status (not just its message) moved."""
        fresh = [
            {**ref.as_status(), "status": h.status.value, "message": h.message[:300]}
            for ref, h in zip(refs, healths, strict=True)
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
        return min(wake, 2.0) if polling else wake

    def all_conditions(self, now: str) -> list[dict[str, Any]]:
        delivered = report.delivered_condition(self.notifications, self.state.run)
        return runs.conditions(self.state, self.live.generation, now, self.conditions, delivered)

    async def persist(self, live: LiveJob) -> None:
        """The one place a DeployJob's status is written in full."""
        self.live = live
        self.conditions = self.all_conditions(utcnow())
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
                "images": self.images,
                "diagnosis": self.diagnosis or None,
            }
        )
