"""One DeployJob's runs: apply, observe, judge, persist, notify — I/O through injected ports.

The decisions live in `run` (pure); this module sequences them. It is the only writer of the
DeployJob's status: the outbox delivers in the background and hands results back through
`sync_notifications`, which persists them.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from deploybell.api.constants import ANNOTATION_CANCEL
from deploybell.api.deployjob import DeployJobSpec, Source, parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.clients.errors import ApiError
from deploybell.deploy import dora, report
from deploybell.deploy import run as runs
from deploybell.deploy import verdict as verdicts
from deploybell.deploy.apply import Applier, ApplyFailure
from deploybell.deploy.health import Status
from deploybell.deploy.live import LiveJob, Timers, legacy_source, monotonic_since, utcnow
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.messages import RunMessages
from deploybell.deploy.observe import Observer
from deploybell.deploy.ports import JobPorts
from deploybell.deploy.rollback import Rollbacks
from deploybell.deploy.run import Action, Phase, RunState
from deploybell.deploy.runlog import RunLog
from deploybell.deploy.status import JobStatus
from deploybell.deploy.target import WAITING, Places
from deploybell.deploy.target_steps import TargetSteps
from deploybell.notify.outbox import Outbox

__all__ = ["JobPorts", "JobRunner", "LiveJob", "utcnow"]


class JobRunner(Rollbacks, TargetSteps):
    """Drives the runs of one DeployJob; `step` is called on every change and timer."""

    def __init__(
        self,
        live: LiveJob,
        ports: JobPorts,
        places: Places,
        outbox: Outbox,
        *,
        presentation: report.Presentation | None = None,
        failfast_grace: float = 10.0,
        history_limit: int = 10,
    ) -> None:
        self.ports, self.places, self.outbox = ports, places, outbox
        self.target_failures = 0  # consecutive steps the target cluster did not answer
        self.log = RunLog(live.namespace, live.name)
        self.failfast_grace = failfast_grace
        self.history_limit = history_limit
        self.live = live
        self.status = JobStatus.from_status(live.status)
        self.state = legacy_source(self.state, live)
        self.timers = Timers()
        if self.state.in_flight:  # resumed: maxWaitSeconds counts from the run's real start
            self.timers.started = monotonic_since(self.state.started_at)
        self.applied = False  # applied in this process: a resumed run re-applies (idempotent)
        self.generations: dict[ObjectRef, int] = {}  # as applied; older cached copies are stale
        self.spec: DeployJobSpec | None = None
        self.messages = RunMessages(
            live.namespace, live.name, outbox, presentation or report.Presentation()
        )

    @property
    def applier(self) -> Applier:
        return self.places.place.applier

    @property
    def observer(self) -> Observer:
        return self.places.place.observer

    @property
    def state(self) -> RunState:
        """The latest run (status.state)."""
        return self.status.state

    @state.setter
    def state(self, value: RunState) -> None:
        self.status.state = value

    @property
    def idle(self) -> bool:
        """No run in flight, nothing being sent and nothing left to send: the task may end."""
        return not self.state.in_flight and not self.messages.pending(self.status)

    async def close(self) -> None:
        """The task ends: stop sending, stop watching, let go of a target cluster's client."""
        self.outbox.close()
        await self.observer.unfollow()
        await self.places.release()

    # --- the loop body ------------------------------------------------------------------------

    async def step(self, live: LiveJob, settle: bool = False) -> float | None:
        """Do what the job needs now; return seconds until a timer needs a look (None: never).
        `settle`: woken by finished sends alone, so let the others of that event finish for one
        status write (anything else, such as a rollout completing, is looked at at once)."""
        self.live = live
        if settle:
            await self.outbox.settle()
        await self.sync_notifications()
        try:
            delay = await self.act(live)
            self.target_failures = 0
        except ApiError as e:
            if not e.cluster or not self.state.in_flight:
                raise  # the operator's own cluster: the engine retries the step
            delay = await self.target_trouble(live, e)
        if not self.state.in_flight:
            await self.places.release()
        await self.sync_notifications()
        retry = self.outbox.next_wake(self.status.notifications)
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
            where = dora.unparsed_environment(self.status.totals, live.namespace)
            await self.begin(live, revision="", source=Source(environment=where))
            await self.fail("InvalidSpec", str(e), live)
            return
        source = (self.spec.source or Source()).resolved(live.namespace)
        await self.begin(live, revision="", source=source)
        if await self.locate(live):
            await self.apply(live)

    async def begin(self, live: LiveJob, revision: str, source: Source) -> None:
        """A new run in memory; the next persist (after the apply, or the failure) records it
        together with its start entry, before anything is sent: one status write, not two.
        A crash before that write leaves no trace, so the run starts afresh with that number.
        `source` (environment resolved) is recorded with the run: its messages say it."""
        self.state = runs.start(self.state, live.desired, utcnow(), revision, source)
        self.timers = Timers()
        self.status.rollback, self.status.diagnosis, self.status.canceled_by = {}, {}, ""
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
            old = {ObjectRef.from_status(r) for r in self.status.resources}
            await self.applier.prune(live.namespace, self.spec, old - set(result.refs))
        self.status.images = result.images
        self.status.resources = [
            {**ref.as_status(), "status": Status.IN_PROGRESS.value, "message": "applied"}
            for ref in result.refs
        ]
        message = f"applied {len(result.refs)} objects, waiting for the rollout"
        self.log.info(
            self.state.run,
            "applied",
            message,
            objects=len(result.refs),
            revision=result.revision,
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
        if not await self.locate(live):
            return None
        if not self.applied and not self.status.rollback:
            await self.apply(live)  # resumed after a restart: SSA is idempotent
            if not self.state.in_flight:
                return None
        refs = [ObjectRef.from_status(r) for r in self.status.resources]
        await self.observer.follow(refs)
        observation = await self.observer.observe(
            live.namespace, live.name, refs, self.spec.service_account_name
        )
        objects = observation.objects
        healths = [
            (ref.describe(), verdicts.health_of(ref, objects.get(ref), self.generations))
            for ref in refs
        ]
        now = time.monotonic()
        stuck = verdicts.stuck_pods(observation.pod_problems, self.timers, self.failfast_grace, now)
        elapsed = time.monotonic() - self.timers.started
        verdict = runs.judge(
            healths, [(p.reason, p.sentence()) for p in stuck], elapsed, self.spec.max_wait_seconds
        )
        self.status.resources, changed = verdicts.fresh_resources(
            refs, [h for _, h in healths], self.status.resources
        )
        if changed:
            self.log.info(
                self.state.run,
                "verdict",
                f"{verdict.outcome.value}: {verdict.message}",
                outcome=verdict.outcome.value,
                reason=verdict.reason,
            )
        if verdict.outcome == runs.Outcome.FAILED:
            self.status.diagnosis = await self.observer.diagnose(
                live.namespace, refs, [h for _, h in healths], stuck, observation
            )
            await self.fail(verdict.reason, verdict.message, live)
            return None
        if verdict.outcome == runs.Outcome.HEALTHY:
            return await self.healthy(live, observation.restarts, observation.all_pods_ready)
        if self.state.phase == Phase.VERIFYING:
            self.timers.verifying_since = None
            self.state = replace(self.state, phase=Phase.DEPLOYING, verifying_at="")
            changed = True
        changed = changed or self.state.reason == WAITING  # the cluster answers again: say so
        self.state = replace(self.state, reason="Progressing", message=verdict.message)
        if changed:
            await self.persist(live)
        return verdicts.next_wake(
            self.spec.max_wait_seconds,
            self.timers,
            self.failfast_grace,
            observation.needs_polling,
            time.monotonic(),
        )

    async def healthy(self, live: LiveJob, restarts: int, pods_ready: bool) -> float | None:
        assert self.spec is not None
        if self.status.rollback:
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
                    verifying_at=utcnow(),
                    reason="Verifying",
                    message=f"rolled out; must stay healthy for {window}s{note}",
                )
                self.log.info(self.state.run, "verifying", self.state.message, seconds=window)
                await self.persist(live)
                return float(window)
            if now - since < window:
                return window - (now - since)
        took = time.monotonic() - self.timers.started
        message = f"all {len(self.status.resources)} objects rolled out in {took:.0f}s"
        await self.conclude(live, Phase.SUCCEEDED, "RolloutComplete", message, "success")
        await self.applier.save_last_good(
            live.namespace,
            live.name,
            live.uid,
            self.spec,
            self.state.run,
            self.state.revision,
        )
        return None

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
            self.status.canceled_by = value
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
                return
        await self.clean_up(live, spec)

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
        done = self.dora_outcome(live)
        self.status.totals, self.status.failing_since = done.totals.as_status(), done.failing_since
        self.status.history = runs.push_history(
            self.status.history, self.state, self.history_limit, done.entry
        )
        self.add_event(event)
        await self.persist(live)
        if phase != Phase.SUCCEEDED:  # a success is said by status alone: no Event, one write less
            await self.ports.record_event(
                True, f"Run{phase.value}", f"run {self.state.run}: {message}"
            )
        started = monotonic_since(self.state.started_at) if self.state.started_at else None
        seconds = time.monotonic() - started if started else None
        self.ports.run_finished(phase.value, seconds, done.observation)  # once: after the write

    def dora_outcome(self, live: LiveJob) -> dora.Concluded:
        before = {"totals": self.status.totals, "failingSince": self.status.failing_since}
        if self.state.source is None:  # recorded by an older version, its spec unreadable now
            return dora.conclude_unparsed(before, self.state, live.namespace)
        return dora.conclude(before, self.state, self.state.source, live.namespace)

    # --- notifications ------------------------------------------------------------------------

    def add_event(self, event: str) -> None:
        self.messages.record(self.status, self.spec, event)

    async def sync_notifications(self) -> None:
        """Hand due entries to the outbox, record what it finished, persist if anything moved."""
        moved, reports = self.messages.pump(self.status)
        for item in reports:
            await self.ports.record_event(item.warning, item.reason, item.message)
        if moved:
            await self.write(full=False)

    async def let_go(self, seconds: float, only_at: int | None) -> None:
        """Another operator (shard) takes this DeployJob over: finish the sends in flight within
        `seconds` and record them, starting none; the record is written only if nobody else
        wrote since `only_at`, else the new owner's ledger stands (and may repeat a send)."""
        await self.outbox.drain(seconds)
        moved, _ = self.messages.pump(self.status, start=False)
        if moved:
            self.status.conditions = self.all_conditions(utcnow())
            await self.ports.patch_status(self.status.deliveries(), only_at)

    async def drain_notifications(self, seconds: float) -> None:
        """Give sends in flight a bounded time to finish, then record them."""
        await self.sync_notifications()
        await self.outbox.drain(seconds)
        await self.sync_notifications()

    # --- status --------------------------------------------------------------------------------

    def all_conditions(self, now: str) -> list[dict[str, Any]]:
        delivered = report.delivered_condition(self.status.notifications, self.state.run)
        return runs.conditions(
            self.state, self.live.generation, now, self.status.conditions, delivered
        )

    async def persist(self, live: LiveJob) -> None:
        """The status in full, after a transition."""
        self.live = live
        await self.write(full=True)

    async def write(self, full: bool) -> None:
        """The one place a DeployJob's status is written: in full, or only what delivery moved."""
        self.status.conditions = self.all_conditions(utcnow())
        patch = self.status.full(self.live.generation) if full else self.status.deliveries()
        await self.ports.patch_status(patch)
