"""rollbackOnFailure: a failed run applies the last successful run's manifests again, waits for
them and then fails saying so; the steps of `JobRunner` that only a rollback takes."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from deploybell.deploy.apply import ApplyFailure, Snapshot
from deploybell.deploy.health import Status
from deploybell.deploy.live import LiveJob, Timers
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.run import Phase
from deploybell.deploy.steps import RunnerSteps
from deploybell.deploy.target import TARGET_REASONS


class Rollbacks(RunnerSteps):
    """Mixed into `JobRunner`, which provides the attributes and steps declared here."""

    generations: dict[ObjectRef, int]

    if TYPE_CHECKING:

        async def conclude(
            self, live: LiveJob, phase: Phase, reason: str, message: str, event: str
        ) -> None: ...

    async def fail(self, reason: str, message: str, live: LiveJob) -> None:
        spec = self.spec
        reached = reason not in TARGET_REASONS  # else nothing was applied there, or it is gone
        if spec is not None and spec.rollback_on_failure and not self.status.rollback and reached:
            snapshot = await self.applier.load_last_good(live.namespace, live.name, spec)
            if snapshot is not None:
                await self.roll_back(live, snapshot, reason, message)
                return
        await self.conclude(live, Phase.FAILED, reason, message, "failure")

    async def roll_back(self, live: LiveJob, snapshot: Snapshot, reason: str, message: str) -> None:
        assert self.spec is not None
        self.status.rollback = {
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
            self.status.rollback["phase"] = "RollbackFailed"
            await self.conclude(
                live,
                Phase.FAILED,
                reason,
                f"{message}; rollback to run {snapshot.run} failed: {e.message}",
                "failure",
            )
            return
        self.generations = generations
        self.status.resources = [
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
        rb = self.status.rollback
        self.status.rollback = {**rb, "phase": "RolledBack"}
        message = f"{rb['message']}; rolled back to run {rb['toRun']} ({rb['revision']})"
        await self.conclude(live, Phase.FAILED, str(rb["reason"]), message, "failure")
